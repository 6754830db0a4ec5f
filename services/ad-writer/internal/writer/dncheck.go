package writer

import (
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// ErrDNStructure says a DN the writer computed from the desired state does not have the shape of
// a managed object's DN: one CN value directly under its parent, the parent a managed OU or below
// one through OUs only. HR data that slipped unescaped into a DN (a display name "x,OU=Admins",
// a unit name "Sales,DC=evil" in parentDistinguishedName) looks like this; the write is refused
// for good (FAILED, INVALID), never sent.
var ErrDNStructure = errors.New("DN refused: not the structure of a managed object")

// checkDN checks the DN rdn + "," + parent before an object is created, moved or renamed there.
// The error names the reason and, through *ldap.Error, the DN only as package pii allows; it is
// classified INVALID (LDAP 34, invalidDNSyntax) and not retried.
func (w *Writer) checkDN(rdn, parent string) error {
	dn := rdn + "," + parent
	if reason := w.dnStructure(dn, parent); reason != "" {
		return fmt.Errorf("%w: %s: %w", ErrDNStructure, reason,
			&ldap.Error{Op: "dn check", DN: dn, Code: goldap.LDAPResultInvalidDNSyntax, Class: ldap.ClassInvalid})
	}
	return nil
}

// dnStructure says what is wrong with dn under parent, or "".
func (w *Writer) dnStructure(dn, parent string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return "the DN does not parse"
	}
	parentDN, err := goldap.ParseDN(parent)
	if err != nil {
		return "the parent DN does not parse"
	}
	if len(parsed.RDNs) != len(parentDN.RDNs)+1 || !(&goldap.DN{RDNs: parsed.RDNs[1:]}).EqualFold(parentDN) {
		return fmt.Sprintf("the object's name adds RDNs: %d RDNs above the parent instead of 1", len(parsed.RDNs)-len(parentDN.RDNs))
	}
	first := parsed.RDNs[0].Attributes
	if len(first) != 1 || !strings.EqualFold(first[0].Type, "CN") || first[0].Value == "" {
		return "the object's RDN is not a single non-empty CN value"
	}
	for _, ou := range w.opts.ManagedOUs {
		managed, err := goldap.ParseDN(ou)
		if ou == "" || err != nil || !(managed.EqualFold(parentDN) || managed.AncestorOfFold(parentDN)) {
			continue
		}
		for _, rdn := range parentDN.RDNs[:len(parentDN.RDNs)-len(managed.RDNs)] {
			if len(rdn.Attributes) != 1 || !strings.EqualFold(rdn.Attributes[0].Type, "OU") {
				return "the parent has an RDN other than a single OU value below the managed OU"
			}
		}
		return ""
	}
	return "the parent is not a managed OU or below one"
}
