package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/orgsync/orgsync/pkg/sambadc"
)

// ADWriterEnv is ad-writer's LDAP_* configuration for the DC.
func ADWriterEnv(dc *sambadc.DC) []string {
	return Env("LDAP_URL", dc.URL, "LDAP_BIND_DN", dc.BindDN, "LDAP_BIND_PASSWORD_FILE", dc.PasswordFile, "LDAP_CA_FILE", dc.CAFile)
}

// dialAD opens an administrator's connection to the DC over LDAPS, verified against its CA.
func dialAD(dc *sambadc.DC) (*goldap.Conn, error) {
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", dc.CAFile)
	}
	u, err := url.Parse(dc.URL)
	if err != nil {
		return nil, fmt.Errorf("LDAP_URL %q: %w", dc.URL, err)
	}
	conn, err := goldap.DialURL(dc.URL, goldap.DialWithTLSConfig(&tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, fmt.Errorf("connecting to the Samba DC: %w", err)
	}
	conn.SetTimeout(time.Minute)
	password, err := dc.Password()
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Bind(dc.BindDN, password); err != nil {
		conn.Close()
		return nil, fmt.Errorf("binding to the Samba DC as %s: %w", dc.BindDN, err)
	}
	return conn, nil
}

// PrepareAD gives the run an empty managed tree in the DC: it removes layout.Root with everything
// below it (left by an earlier run on a reused domain) and creates the layout's OUs.
func PrepareAD(dc *sambadc.DC, layout ADLayout) error {
	conn, err := dialAD(dc)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := conn.SearchWithPaging(goldap.NewSearchRequest(layout.Root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), 500)
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return fmt.Errorf("reading %s: %w", layout.Root, err)
	}
	if res != nil {
		// Children before their parents: the deepest DNs first.
		dns := make([]string, 0, len(res.Entries))
		for _, e := range res.Entries {
			dns = append(dns, e.DN)
		}
		depth := func(dn string) int {
			parsed, err := goldap.ParseDN(dn)
			if err != nil {
				return 0
			}
			return len(parsed.RDNs)
		}
		sort.SliceStable(dns, func(i, j int) bool { return depth(dns[i]) > depth(dns[j]) })
		for _, dn := range dns {
			if err := conn.Del(goldap.NewDelRequest(dn, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				return fmt.Errorf("removing %s: %w", dn, err)
			}
		}
	}
	for _, ou := range layout.OUs() {
		add := goldap.NewAddRequest(ou, nil)
		add.Attribute("objectClass", []string{"top", "organizationalUnit"})
		if err := conn.Add(add); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("creating %s: %w", ou, err)
		}
	}
	return nil
}

// SnapshotAD reads every user and group of the DC below layout.Root, with every member of each
// group (range retrieval: AD hands out at most MaxValRange values of an attribute per read).
func SnapshotAD(dc *sambadc.DC, layout ADLayout) (ADSnapshot, error) {
	var snap ADSnapshot
	conn, err := dialAD(dc)
	if err != nil {
		return snap, err
	}
	defer conn.Close()
	res, err := conn.SearchWithPaging(goldap.NewSearchRequest(layout.Root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		// msDS-KeyVersionNumber is constructed: only returned when asked for by name.
		"(|(objectClass=user)(objectClass=group))", []string{"*", "msDS-KeyVersionNumber"}, nil), 500)
	if err != nil {
		return snap, fmt.Errorf("reading %s: %w", layout.Root, err)
	}
	for _, e := range res.Entries {
		entry := ADEntry{DN: e.DN, Attrs: map[string][]string{}}
		next := -1 // the first member value still to read, when the answer was ranged
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if name == "member" || strings.HasPrefix(name, "member;range=") {
				entry.Members = append(entry.Members, a.Values...)
				if end, ok := rangeEnd(name); ok {
					next = end + 1
				}
				continue
			}
			entry.Attrs[name] = a.Values
		}
		for next >= 0 {
			if entry.Members, next, err = readMemberRange(conn, e.DN, entry.Members, next); err != nil {
				return snap, err
			}
		}
		classes := map[string]bool{}
		for _, class := range entry.Attrs["objectclass"] {
			classes[strings.ToLower(class)] = true
		}
		switch {
		case classes["group"]:
			snap.Groups = append(snap.Groups, entry)
		case classes["user"] && !classes["computer"]:
			snap.Users = append(snap.Users, entry)
		}
	}
	return snap, nil
}

// rangeEnd returns N of an attribute named "member;range=M-N"; false for the last range ("M-*").
func rangeEnd(name string) (int, bool) {
	_, bounds, ok := strings.Cut(name, ";range=")
	if !ok {
		return 0, false
	}
	_, end, _ := strings.Cut(bounds, "-")
	n, err := strconv.Atoi(end)
	return n, err == nil
}

// readMemberRange reads the group's member values from start on, appends them to members, and
// returns where the next range starts (-1 after the last).
func readMemberRange(conn *goldap.Conn, groupDN string, members []string, start int) ([]string, int, error) {
	res, err := conn.Search(goldap.NewSearchRequest(groupDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{fmt.Sprintf("member;range=%d-*", start)}, nil))
	if err != nil {
		return members, -1, fmt.Errorf("reading the members of %s: %w", groupDN, err)
	}
	next := -1
	for _, e := range res.Entries {
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if !strings.HasPrefix(name, "member") {
				continue
			}
			members = append(members, a.Values...)
			if end, ok := rangeEnd(name); ok {
				next = end + 1
			}
		}
	}
	return members, next, nil
}
