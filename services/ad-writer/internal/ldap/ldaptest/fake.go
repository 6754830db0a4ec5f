// Package ldaptest provides an in-memory Active Directory for ad-writer's tests (Fake) and the
// contract suite (RunContract) that every implementation of the writer's Directory port passes —
// the fake here and ldap.Client against a real Samba AD DC alike — so that the fake cannot drift
// from what a domain controller does.
package ldaptest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// Fake is a directory held in memory that answers as Samba AD does in what ad-writer relies on
// (RunContract states it): parents must exist; DNs, sAMAccountNames and userPrincipalNames are
// unique; member and manager values name existing objects and follow them when they move or go;
// a modify is all or nothing; every write raises the USN; a search returns only the attributes
// asked for; passwords must meet the default policy and are never returned. Its errors carry
// Samba's result codes and are classified as Client classifies a DC's (ldap.Answer). It is safe
// for concurrent use.
type Fake struct {
	// BeforeModify, when set, runs at the start of every Modify, before the fake takes its lock:
	// a test's way to make another replica's write happen meanwhile.
	BeforeModify func(dn string)
	// FailAll, when set, is the answer to every search: a DC that does not answer.
	FailAll error

	mu      sync.Mutex
	entries map[string]*fakeEntry // by dnKey
	usn     int64
	guids   uint64
}

type fakeEntry struct {
	dn    string
	attrs map[string][]string // by the name first written; looked up case-insensitively
	// created orders search results as a DC returns them, oldest first.
	created int64
	// passwordSets counts the passwords set (msDS-KeyVersionNumber is 1 + passwordSets).
	passwordSets int
}

var _ Directory = (*Fake)(nil)

// NewFake returns a directory holding the given containers and everything above them, as a
// domain holds its OUs before the writer runs.
func NewFake(containers ...string) *Fake {
	f := &Fake{entries: map[string]*fakeEntry{}}
	for _, container := range containers {
		dn, err := goldap.ParseDN(container)
		if err != nil {
			panic("ldaptest.NewFake: " + err.Error())
		}
		for i := len(dn.RDNs) - 1; i >= 0; i-- {
			sub := &goldap.DN{RDNs: dn.RDNs[i:]}
			if f.entries[dnKey(sub)] != nil {
				continue
			}
			class := "container"
			switch strings.ToLower(sub.RDNs[0].Attributes[0].Type) {
			case "dc":
				class = "domainDNS"
			case "ou":
				class = "organizationalUnit"
			}
			f.store(sub.String(), sub, &fakeEntry{attrs: map[string][]string{"objectClass": {class}}})
		}
	}
	return f
}

// Entry returns a copy of the entry at dn with every attribute it stores, or nil.
func (f *Fake) Entry(dn string) *ldap.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return nil
	}
	e := f.entries[dnKey(parsed)]
	if e == nil {
		return nil
	}
	return e.read([]string{"*"})
}

// Search returns the entries at and below base that filter matches, with the attributes asked for
// (all stored ones for none or "*"; constructed ones such as msDS-KeyVersionNumber only by name).
func (f *Fake) Search(_ context.Context, base, filter string, attrs []string) ([]*ldap.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailAll != nil {
		return nil, f.FailAll
	}
	compiled, err := goldap.CompileFilter(filter)
	if err != nil {
		return nil, answer("search", base, goldap.ErrorFilterCompile, "ldap: error compiling filter")
	}
	baseDN, err := goldap.ParseDN(base)
	if err != nil {
		return nil, answer("search", base, goldap.LDAPResultInvalidDNSyntax, "invalid DN syntax")
	}
	if f.entries[dnKey(baseDN)] == nil {
		return nil, answer("search", base, goldap.LDAPResultNoSuchObject, "0000208D: the base does not exist")
	}
	var found []*fakeEntry
	for _, e := range f.entries {
		if under(e, baseDN) && e.matches(compiled) {
			found = append(found, e)
		}
	}
	slices.SortFunc(found, func(a, b *fakeEntry) int { return int(a.created - b.created) })
	out := make([]*ldap.Entry, len(found))
	for i, e := range found {
		out[i] = e.read(attrs)
	}
	return out, nil
}

// AddEntry adds an entry as a DC does: under an existing parent, with an objectClass, with a DN,
// a sAMAccountName and a userPrincipalName no other object has, and a manager that exists.
func (f *Fake) AddEntry(_ context.Context, dn string, attrs map[string][]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 {
		return answer("add", dn, goldap.LDAPResultInvalidDNSyntax, "invalid DN syntax")
	}
	if f.entries[dnKey(parsed)] != nil {
		return answer("add", dn, goldap.LDAPResultEntryAlreadyExists, "Entry already exists")
	}
	if f.entries[dnKey(&goldap.DN{RDNs: parsed.RDNs[1:]})] == nil {
		return answer("add", dn, goldap.LDAPResultNoSuchObject, "objectclass: Cannot add entry, parent does not exist!")
	}
	e := &fakeEntry{attrs: map[string][]string{}}
	for name, values := range attrs {
		e.set(name, values)
	}
	if len(e.values("objectClass")) == 0 {
		return answer("add", dn, goldap.LDAPResultObjectClassViolation, "objectclass: Cannot add an entry without objectClass")
	}
	if password := e.values("unicodePwd"); password != nil {
		e.del("unicodePwd")
		if err := e.setPassword("add", dn, password); err != nil {
			return err
		}
	}
	if err := f.checkValues("add", dn, e, nil); err != nil {
		return err
	}
	f.store(dn, parsed, e)
	return nil
}

// store adds an entry at dn, completing its objectClass chain and giving it a GUID and USNs.
func (f *Fake) store(dn string, parsed *goldap.DN, e *fakeEntry) {
	e.dn = dn
	e.set("objectClass", classChain(e.values("objectClass")))
	// A value of the RDN's attribute is the RDN's, as a DC keeps it.
	rdn := parsed.RDNs[0].Attributes[0]
	e.set(rdn.Type, []string{rdn.Value})
	e.set("name", []string{rdn.Value})
	f.guids++
	guid := make([]byte, 16)
	for i := range 8 {
		guid[15-i] = byte(f.guids >> (8 * i))
	}
	e.set("objectGUID", []string{string(guid)})
	f.touch(e)
	e.created = f.usn
	e.set("uSNCreated", []string{strconv.FormatInt(f.usn, 10)})
	f.entries[dnKey(parsed)] = e
}

// Modify applies changes to one entry, all or none.
func (f *Fake) Modify(_ context.Context, dn string, changes []ldap.Change) error {
	if before := f.BeforeModify; before != nil {
		before(dn)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.lookup(dn)
	if e == nil {
		return answer("modify", dn, goldap.LDAPResultNoSuchObject, "objectclass: Cannot modify, entry does not exist!")
	}
	changed := e.clone()
	for _, ch := range changes {
		if err := f.change(dn, changed, ch); err != nil {
			return err
		}
	}
	if err := f.checkValues("modify", dn, changed, e); err != nil {
		return err
	}
	e.attrs, e.passwordSets = changed.attrs, changed.passwordSets
	f.touch(e)
	return nil
}

func (f *Fake) change(dn string, e *fakeEntry, ch ldap.Change) error {
	switch {
	case strings.EqualFold(ch.Attr, "unicodePwd"):
		return e.setPassword("modify", dn, ch.Values)
	case strings.EqualFold(ch.Attr, "member"):
		return f.changeMembers(dn, e, ch)
	}
	have := e.values(ch.Attr)
	switch ch.Op {
	case ldap.Replace:
		e.set(ch.Attr, ch.Values)
	case ldap.Add:
		for _, v := range ch.Values {
			if slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, v) }) {
				return answer("modify", dn, goldap.LDAPResultAttributeOrValueExists, "attribute: value already present")
			}
		}
		e.set(ch.Attr, append(slices.Clone(have), ch.Values...))
	case ldap.Delete:
		if len(have) == 0 {
			return answer("modify", dn, goldap.LDAPResultNoSuchAttribute, "attribute: no matching attribute value while deleting")
		}
		if len(ch.Values) == 0 {
			e.del(ch.Attr)
			return nil
		}
		kept := slices.Clone(have)
		for _, v := range ch.Values {
			at := slices.IndexFunc(kept, func(h string) bool { return strings.EqualFold(h, v) })
			if at < 0 {
				return answer("modify", dn, goldap.LDAPResultNoSuchAttribute, "attribute: no matching attribute value while deleting")
			}
			kept = slices.Delete(kept, at, at+1)
		}
		e.set(ch.Attr, kept)
	}
	return nil
}

// changeMembers answers as Samba does: adding a value already there is 68 (AD: 20), adding a DN
// that names no object 32, removing a value that is not there — a DN that names no object, or
// an object that is not a member — 53 (AD: 16).
func (f *Fake) changeMembers(dn string, group *fakeEntry, ch ldap.Change) error {
	members := group.values("member")
	if ch.Op == ldap.Replace || ch.Op == ldap.Delete && len(ch.Values) == 0 {
		members = nil
	}
	present := map[*fakeEntry]bool{}
	for _, member := range members {
		present[f.lookup(member)] = true
	}
	for _, member := range ch.Values {
		target := f.lookup(member)
		switch {
		case ch.Op == ldap.Delete && (target == nil || !present[target]):
			return answer("modify", dn, goldap.LDAPResultUnwillingToPerform, "attribute 'member': no matching attribute value while deleting")
		case ch.Op == ldap.Delete:
			delete(present, target)
		case target == nil:
			return answer("modify", dn, goldap.LDAPResultNoSuchObject, "00002083: the member does not exist")
		case present[target]:
			return answer("modify", dn, goldap.LDAPResultEntryAlreadyExists, "attribute 'member': value provided more than once")
		default:
			present[target] = true
			members = append(members, target.dn)
		}
	}
	group.set("member", slices.DeleteFunc(slices.Clone(members), func(member string) bool { return !present[f.lookup(member)] }))
	return nil
}

// checkValues checks what a DC checks of an entry's values after a write: sAMAccountName (68) and
// userPrincipalName (19) are unique, and a manager names an existing object (19).
func (f *Fake) checkValues(op, dn string, e, old *fakeEntry) error {
	taken := func(attr string) bool {
		value := e.get(attr)
		if value == "" || old != nil && strings.EqualFold(value, old.get(attr)) {
			return false
		}
		for _, other := range f.entries {
			if other != old && strings.EqualFold(other.get(attr), value) {
				return true
			}
		}
		return false
	}
	if taken("sAMAccountName") {
		return answer(op, dn, goldap.LDAPResultEntryAlreadyExists, "samldb: Account name (sAMAccountName) already in use!")
	}
	if taken("userPrincipalName") {
		return answer(op, dn, goldap.LDAPResultConstraintViolation, "0000202F: samldb: userPrincipalName is already in use")
	}
	if manager := e.get("manager"); manager != "" {
		target := f.lookup(manager)
		if target == nil {
			return answer(op, dn, goldap.LDAPResultConstraintViolation, "000020B5: Referenced object not found")
		}
		e.set("manager", []string{target.dn})
	}
	return nil
}

// ModifyDN renames and/or moves an entry (and what is below it); member and manager values that
// name it follow, as AD keeps linked attributes.
func (f *Fake) ModifyDN(_ context.Context, dn, newRDN, newSuperior string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.lookup(dn)
	if e == nil {
		return answer("modifydn", dn, goldap.LDAPResultNoSuchObject, "the entry does not exist")
	}
	oldDN, _ := goldap.ParseDN(e.dn)
	if newSuperior == "" {
		_, newSuperior = ldap.Parent(e.dn)
	}
	parent, err := goldap.ParseDN(newSuperior)
	if err != nil {
		return answer("modifydn", dn, goldap.LDAPResultInvalidDNSyntax, "invalid DN syntax")
	}
	if f.entries[dnKey(parent)] == nil {
		return answer("modifydn", dn, goldap.LDAPResultOther, "00002095: objectclass: Cannot rename, parent does not exist!")
	}
	target, err := goldap.ParseDN(newRDN + "," + newSuperior)
	if err != nil || len(target.RDNs) != len(parent.RDNs)+1 {
		return answer("modifydn", dn, goldap.LDAPResultInvalidDNSyntax, "invalid DN syntax")
	}
	if existing := f.entries[dnKey(target)]; existing != nil && existing != e {
		return answer("modifydn", dn, goldap.LDAPResultEntryAlreadyExists, "Entry already exists")
	}
	if oldDN.AncestorOfFold(target) {
		return answer("modifydn", dn, goldap.LDAPResultUnwillingToPerform, "cannot move an entry below itself")
	}
	renames := map[string]string{} // old dnKey → new DN, for e and everything below it
	for key, moved := range f.entries {
		movedDN, _ := goldap.ParseDN(moved.dn)
		if !movedDN.EqualFold(oldDN) && !oldDN.AncestorOfFold(movedDN) {
			continue
		}
		below := &goldap.DN{RDNs: append(slices.Clone(movedDN.RDNs[:len(movedDN.RDNs)-len(oldDN.RDNs)]), target.RDNs...)}
		renames[key] = below.String()
		if moved == e {
			renames[key] = newRDN + "," + newSuperior
		}
	}
	for key := range renames {
		moved := f.entries[key]
		delete(f.entries, key)
		moved.dn = renames[key]
		newDN, _ := goldap.ParseDN(moved.dn)
		f.entries[dnKey(newDN)] = moved
	}
	rdn := target.RDNs[0].Attributes[0]
	e.set(rdn.Type, []string{rdn.Value})
	e.set("name", []string{rdn.Value})
	f.touch(e)
	for _, other := range f.entries {
		for _, attr := range []string{"member", "manager"} {
			values := other.values(attr)
			for i, v := range values {
				if parsed, err := goldap.ParseDN(v); err == nil {
					if newDN, ok := renames[dnKey(parsed)]; ok {
						values[i] = newDN
					}
				}
			}
		}
	}
	return nil
}

// DeleteEntry deletes a leaf entry; the member and manager values that named it go with it.
func (f *Fake) DeleteEntry(_ context.Context, dn string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.lookup(dn)
	if e == nil {
		return answer("delete", dn, goldap.LDAPResultNoSuchObject, "objectclass: Cannot delete, entry does not exist!")
	}
	parsed, _ := goldap.ParseDN(e.dn)
	for _, other := range f.entries {
		if otherDN, _ := goldap.ParseDN(other.dn); parsed.AncestorOfFold(otherDN) {
			return answer("delete", dn, goldap.LDAPResultNotAllowedOnNonLeaf, "subtree_delete: Unable to delete a non-leaf node")
		}
	}
	delete(f.entries, dnKey(parsed))
	for _, other := range f.entries {
		for _, attr := range []string{"member", "manager"} {
			if values := other.values(attr); values != nil {
				other.set(attr, slices.DeleteFunc(slices.Clone(values), func(v string) bool { return ldap.SameDN(v, e.dn) }))
			}
		}
	}
	f.usn++
	return nil
}

// HighestUSN returns the USN of the newest write.
func (f *Fake) HighestUSN(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usn, nil
}

// Members returns every member of a group; none for a group that does not exist, as
// ldap.Client answers.
func (f *Fake) Members(_ context.Context, groupDN string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.lookup(groupDN); e != nil {
		return slices.Clone(e.values("member")), nil
	}
	return nil, nil
}

func (f *Fake) lookup(dn string) *fakeEntry {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return nil
	}
	return f.entries[dnKey(parsed)]
}

func under(e *fakeEntry, base *goldap.DN) bool {
	dn, err := goldap.ParseDN(e.dn)
	return err == nil && (dn.EqualFold(base) || base.AncestorOfFold(dn))
}

func (f *Fake) touch(e *fakeEntry) {
	f.usn++
	e.set("uSNChanged", []string{strconv.FormatInt(f.usn, 10)})
}

// dnKey is a DN's map key: its RDNs, case folded, in RFC 4514 form.
func dnKey(dn *goldap.DN) string {
	return strings.ToLower(dn.String())
}

// answer is the error Client returns for a DC's answer (code and diagnostic message in Samba's
// words, without the DN or the values).
func answer(op, dn string, code uint16, diagnostic string) *ldap.Error {
	return ldap.Answer(op, dn, code, diagnostic)
}

// classChain completes an object's classes as a DC stores them (a user is also a person and an
// organizationalPerson, everything is a top).
func classChain(classes []string) []string {
	chains := map[string][]string{
		"user":               {"top", "person", "organizationalPerson", "user"},
		"contact":            {"top", "person", "organizationalPerson", "contact"},
		"group":              {"top", "group"},
		"organizationalUnit": {"top", "organizationalUnit"},
		"container":          {"top", "container"},
		"domainDNS":          {"top", "domain", "domainDNS"},
	}
	var out []string
	for _, class := range classes {
		for name, chain := range chains {
			if strings.EqualFold(class, name) {
				for _, c := range chain {
					if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, c) }) {
						out = append(out, c)
					}
				}
			}
		}
	}
	for _, class := range classes {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, class) }) {
			out = append(out, class)
		}
	}
	return out
}

// category is the objectCategory a DC gives an object of these classes, by its LDAP display name.
func category(classes []string) string {
	has := func(name string) bool {
		return slices.ContainsFunc(classes, func(c string) bool { return strings.EqualFold(c, name) })
	}
	switch {
	case has("computer"):
		return "computer"
	case has("user"), has("contact"):
		return "person"
	case has("group"):
		return "group"
	case has("organizationalUnit"):
		return "organizationalUnit"
	case has("domainDNS"):
		return "domainDNS"
	}
	return "container"
}

func (e *fakeEntry) name(attr string) (string, bool) {
	for name := range e.attrs {
		if strings.EqualFold(name, attr) {
			return name, true
		}
	}
	return attr, false
}

func (e *fakeEntry) values(attr string) []string {
	if name, ok := e.name(attr); ok {
		return e.attrs[name]
	}
	return nil
}

func (e *fakeEntry) get(attr string) string {
	if v := e.values(attr); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (e *fakeEntry) set(attr string, values []string) {
	name, _ := e.name(attr)
	if len(values) == 0 {
		delete(e.attrs, name)
		return
	}
	e.attrs[name] = slices.Clone(values)
}

func (e *fakeEntry) del(attr string) { e.set(attr, nil) }

func (e *fakeEntry) clone() *fakeEntry {
	c := *e
	c.attrs = make(map[string][]string, len(e.attrs))
	for name, values := range e.attrs {
		c.attrs[name] = slices.Clone(values)
	}
	return &c
}

// setPassword checks a unicodePwd value against the domain's default policy (7 characters or
// more, of three of the four kinds) as Samba does, and counts it; the password is not kept.
func (e *fakeEntry) setPassword(op, dn string, values []string) error {
	if len(values) != 1 {
		return answer(op, dn, goldap.LDAPResultUnwillingToPerform, "setting unicodePwd takes one value")
	}
	password := decodeUnicodePwd(values[0])
	var lower, upper, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	kinds := 0
	for _, kind := range []bool{lower, upper, digit, other} {
		if kind {
			kinds++
		}
	}
	if len([]rune(password)) < 7 || kinds < 3 {
		return answer(op, dn, goldap.LDAPResultConstraintViolation, "0000052D: Constraint violation - check_password_restrictions: the password does not meet the domain's policy")
	}
	e.passwordSets++
	// As AD does; a pwdLastSet 0 later in the same modify overrides it.
	e.set("pwdLastSet", []string{ldap.FileTime(time.Now())})
	return nil
}

// decodeUnicodePwd reverses ldap.UnicodePwd: UTF-16LE, in double quotes.
func decodeUnicodePwd(encoded string) string {
	var runes []rune
	for i := 0; i+1 < len(encoded); i += 2 {
		runes = append(runes, rune(encoded[i])|rune(encoded[i+1])<<8)
	}
	return strings.TrimSuffix(strings.TrimPrefix(string(runes), `"`), `"`)
}

// read returns a copy of the entry with the attributes asked for: every stored one for none or
// "*", none for "1.1", the constructed msDS-KeyVersionNumber and objectCategory only by name.
func (e *fakeEntry) read(attrs []string) *ldap.Entry {
	out := &ldap.Entry{DN: e.dn, Attrs: map[string][]string{}}
	all := len(attrs) == 0 || slices.Contains(attrs, "*")
	for name, values := range e.attrs {
		if all || slices.ContainsFunc(attrs, func(a string) bool { return strings.EqualFold(a, name) }) {
			out.Attrs[name] = slices.Clone(values)
		}
	}
	for _, attr := range attrs {
		switch {
		case strings.EqualFold(attr, "msDS-KeyVersionNumber") && slices.ContainsFunc(e.values("objectClass"), func(c string) bool { return strings.EqualFold(c, "user") }):
			out.Attrs["msDS-KeyVersionNumber"] = []string{strconv.Itoa(1 + e.passwordSets)}
		case strings.EqualFold(attr, "objectCategory"):
			out.Attrs["objectCategory"] = []string{e.categoryDN()}
		}
	}
	return out
}

// categoryDN is the entry's objectCategory as a DC stores it: the class's schema DN.
func (e *fakeEntry) categoryDN() string {
	names := map[string]string{"person": "Person", "computer": "Computer", "group": "Group",
		"organizationalUnit": "Organizational-Unit", "domainDNS": "Domain-DNS", "container": "Container"}
	dn, _ := goldap.ParseDN(e.dn)
	domain := &goldap.DN{}
	for i := len(dn.RDNs) - 1; i >= 0 && strings.EqualFold(dn.RDNs[i].Attributes[0].Type, "DC"); i-- {
		domain.RDNs = append([]*goldap.RelativeDN{dn.RDNs[i]}, domain.RDNs...)
	}
	return "CN=" + names[category(e.values("objectClass"))] + ",CN=Schema,CN=Configuration," + domain.String()
}

// matches evaluates a compiled search filter: equality (case-insensitive, but exact for
// objectGUID), presence, substrings, ordering (numeric where both sides are numbers), and, or, not.
// objectCategory matches the category's LDAP display name or its schema DN.
func (e *fakeEntry) matches(filter *ber.Packet) bool {
	attrValue := func() (string, string) {
		return ber.DecodeString(filter.Children[0].Data.Bytes()), ber.DecodeString(filter.Children[1].Data.Bytes())
	}
	switch filter.Tag {
	case goldap.FilterAnd:
		for _, child := range filter.Children {
			if !e.matches(child) {
				return false
			}
		}
		return true
	case goldap.FilterOr:
		for _, child := range filter.Children {
			if e.matches(child) {
				return true
			}
		}
		return false
	case goldap.FilterNot:
		return !e.matches(filter.Children[0])
	case goldap.FilterPresent:
		attr := ber.DecodeString(filter.Data.Bytes())
		return strings.EqualFold(attr, "objectCategory") || len(e.values(attr)) > 0
	case goldap.FilterEqualityMatch:
		attr, want := attrValue()
		switch {
		case strings.EqualFold(attr, "objectCategory"):
			return strings.EqualFold(want, category(e.values("objectClass"))) || ldap.SameDN(want, e.categoryDN())
		case strings.EqualFold(attr, "objectGUID"):
			return slices.Contains(e.values(attr), want)
		}
		return slices.ContainsFunc(e.values(attr), func(v string) bool { return strings.EqualFold(v, want) })
	case goldap.FilterGreaterOrEqual, goldap.FilterLessOrEqual:
		attr, bound := attrValue()
		return slices.ContainsFunc(e.values(attr), func(v string) bool {
			order := strings.Compare(strings.ToLower(v), strings.ToLower(bound))
			if a, errA := strconv.ParseInt(v, 10, 64); errA == nil {
				if b, errB := strconv.ParseInt(bound, 10, 64); errB == nil {
					order = compareInts(a, b)
				}
			}
			if filter.Tag == goldap.FilterGreaterOrEqual {
				return order >= 0
			}
			return order <= 0
		})
	case goldap.FilterSubstrings:
		attr := ber.DecodeString(filter.Children[0].Data.Bytes())
		return slices.ContainsFunc(e.values(attr), func(v string) bool {
			rest := strings.ToLower(v)
			for _, part := range filter.Children[1].Children {
				s := strings.ToLower(ber.DecodeString(part.Data.Bytes()))
				switch part.Tag {
				case goldap.FilterSubstringsInitial:
					if !strings.HasPrefix(rest, s) {
						return false
					}
					rest = rest[len(s):]
				case goldap.FilterSubstringsFinal:
					if !strings.HasSuffix(rest, s) {
						return false
					}
					rest = ""
				default:
					at := strings.Index(rest, s)
					if at < 0 {
						return false
					}
					rest = rest[at+len(s):]
				}
			}
			return true
		})
	}
	return false
}

func compareInts(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
