// Package ldap is ad-writer's connection to Active Directory: a small pool of TLS-only LDAP
// connections (LDAPS, or StartTLS before any bind) that reconnects with backoff, counts every
// operation, classifies LDAP result codes, and in dry-run mode logs each write instead of sending
// it. A Client is safe for concurrent use.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/orgsync/orgsync/pkg/pii"
)

// Config says where and how to connect.
type Config struct {
	// URL is ldaps://host[:port] or ldap://host[:port]; ldap:// is always upgraded with StartTLS.
	URL    string
	BindDN string
	// BindPassword is the bind secret; it is never logged nor put in an error.
	BindPassword string
	// CAFile is the PEM bundle the directory's certificate must chain to.
	CAFile string
	// PoolSize is the number of connections kept open (default 2).
	PoolSize int
	// Timeout bounds every operation (default 30s).
	Timeout time.Duration
	// DryRun logs writes (adds, modifies, renames, deletes) instead of sending them.
	DryRun bool
}

// Class is what an LDAP error means to the writer.
type Class int

// Classes of LDAP errors.
const (
	ClassUnknown Class = iota
	// ClassUnavailable: the directory cannot be reached (network, busy, unavailable); retry.
	ClassUnavailable
	ClassNotFound
	ClassExists
	ClassInvalid
	ClassForbidden
)

// Error is an LDAP failure: the operation, the DN and the result code, never attribute values.
// Its message shows the DN as package pii allows (by default only its shape and domain).
type Error struct {
	Op    string
	DN    string
	Code  uint16
	Class Class
	// Property is the attribute a constraint, syntax or uniqueness failure is about (e.g.
	// "sAMAccountName", "userPrincipalName"), when the DC's diagnostic message names one; see
	// AttributeInDiagnostic. The diagnostic message itself is not kept: it may quote the value.
	Property string
}

func (e *Error) Error() string {
	if e.Property != "" {
		return fmt.Sprintf("ldap %s %q: result %d (%s), attribute %s", e.Op, pii.DN(e.DN), e.Code, goldap.LDAPResultCodeMap[e.Code], e.Property)
	}
	return fmt.Sprintf("ldap %s %q: result %d (%s)", e.Op, pii.DN(e.DN), e.Code, goldap.LDAPResultCodeMap[e.Code])
}

// PropertyOf returns the attribute err is about, or "".
func PropertyOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Property
	}
	return ""
}

// identifyingAttributes are the attributes AttributeInDiagnostic looks for in a diagnostic
// message, longest first so that "mailNickname" is not read as "mail".
var identifyingAttributes = []string{
	"userPrincipalName", "sAMAccountName", "employeeID", "displayName", "mailNickname",
	"givenName", "department", "company", "title", "mail", "sn", "cn",
}

// AttributeInDiagnostic reads which attribute a failure is about from the DC's diagnostic
// message. LDAP has no field for it (result codes 19, 21, 64 and 68 say what, not where), so this
// is the one place that reads message text, in the two documented shapes:
//
//	AD:    000021C8: AtrErr: DSID-03200BBA, #1: 0: 000021C8: DSID-03200BBA, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 90290 (userPrincipalName)
//	Samba: samldb: Account name (sAMAccountName) 'jdoe' already in use!
//
// AD's "Att <id> (<name>)" is taken first; otherwise the first attribute orgsync writes that the
// message names in parentheses or as a word. It returns "" when none is named.
func AttributeInDiagnostic(message string) string {
	if _, after, found := strings.Cut(message, ", Att "); found {
		if _, name, found := strings.Cut(after, "("); found {
			if name, _, found := strings.Cut(name, ")"); found && name != "" {
				return name
			}
		}
	}
	lower := strings.ToLower(message)
	isWordByte := func(b byte) bool {
		return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-'
	}
	for _, attribute := range identifyingAttributes {
		name := strings.ToLower(attribute)
		for from := 0; ; {
			at := strings.Index(lower[from:], name)
			if at < 0 {
				break
			}
			at += from
			end := at + len(name)
			if (at == 0 || !isWordByte(lower[at-1])) && (end == len(lower) || !isWordByte(lower[end])) {
				return attribute
			}
			from = end
		}
	}
	return ""
}

// Code returns the LDAP result code in err, or 0.
func Code(err error) uint16 {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// ClassOf returns the class of err; errors that are not LDAP answers are ClassUnavailable.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if err == nil {
		return ClassUnknown
	}
	return ClassUnavailable
}

// Result codes the writer recognises.
const (
	ResultNoSuchAttribute   = goldap.LDAPResultNoSuchAttribute
	ResultValueExists       = goldap.LDAPResultAttributeOrValueExists
	ResultNoSuchObject      = goldap.LDAPResultNoSuchObject
	ResultUnwillingToPerfom = goldap.LDAPResultUnwillingToPerform
	ResultEntryExists       = goldap.LDAPResultEntryAlreadyExists
)

func classify(op, dn string, err error) error {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return &Error{Op: op, DN: dn, Code: goldap.ErrorNetwork, Class: ClassUnavailable}
	}
	class := ClassUnknown
	switch le.ResultCode {
	case goldap.ErrorNetwork, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.LDAPResultServerDown,
		goldap.LDAPResultTimeout, goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultConnectError, goldap.LDAPResultOther:
		class = ClassUnavailable
	case goldap.LDAPResultNoSuchObject, goldap.LDAPResultNoSuchAttribute:
		class = ClassNotFound
	case goldap.LDAPResultEntryAlreadyExists, goldap.LDAPResultAttributeOrValueExists:
		class = ClassExists
	case goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultInvalidCredentials, goldap.LDAPResultStrongAuthRequired:
		class = ClassForbidden
	case goldap.LDAPResultConstraintViolation, goldap.LDAPResultObjectClassViolation, goldap.LDAPResultInvalidAttributeSyntax,
		goldap.LDAPResultInvalidDNSyntax, goldap.LDAPResultNamingViolation, goldap.LDAPResultUndefinedAttributeType,
		goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultNotAllowedOnRDN, goldap.LDAPResultNotAllowedOnNonLeaf:
		class = ClassInvalid
	}
	if le.ResultCode == goldap.LDAPResultOther && le.Err != nil && strings.Contains(strings.ToLower(le.Err.Error()), "parent does not exist") {
		// Samba answers a move under an OU that does not exist with 80 ("00002095: objectclass:
		// Cannot rename ..., parent does not exist!") where AD answers 32. It is the desired state
		// naming a missing OU, not a DC that cannot serve: pausing the writer on it would stop
		// every other object for good.
		class = ClassNotFound
	}
	classified := &Error{Op: op, DN: dn, Code: le.ResultCode, Class: class}
	switch le.ResultCode {
	case goldap.LDAPResultConstraintViolation, goldap.LDAPResultInvalidAttributeSyntax,
		goldap.LDAPResultNamingViolation, goldap.LDAPResultEntryAlreadyExists, goldap.LDAPResultAttributeOrValueExists:
		if le.Err != nil {
			classified.Property = AttributeInDiagnostic(le.Err.Error())
		}
		if le.ResultCode == goldap.LDAPResultConstraintViolation && uniquenessDiagnostic(le.Err) {
			// AD and Samba answer a unique attribute held by another object (a
			// userPrincipalName, say) with 19, not 68: a conflict, not a bad value.
			classified.Class = ClassExists
		}
	}
	return classified
}

// Answer returns the error Client returns when the directory answers op on dn with an LDAP result
// code and diagnostic message: classified, with the attribute the message names. ldaptest's fake
// answers through it, so that its errors are classified as a DC's.
func Answer(op, dn string, code uint16, diagnostic string) *Error {
	var classified *Error
	errors.As(classify(op, dn, goldap.NewError(code, errors.New(diagnostic))), &classified)
	return classified
}

// uniquenessDiagnostic reports whether a constraint violation's diagnostic says a value is
// already in use by another object, in AD's or Samba's words.
func uniquenessDiagnostic(err error) bool {
	if err == nil {
		return false
	}
	message := strings.ToLower(err.Error())
	for _, phrase := range []string{"already in use", "duplicate", "not unique", "unique"} {
		if strings.Contains(message, phrase) {
			return true
		}
	}
	return false
}

// Entry is one directory object as read.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// Get returns the first value of an attribute (case-insensitive name), or "".
func (e *Entry) Get(name string) string {
	if v := e.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of an attribute.
func (e *Entry) Values(name string) []string {
	for k, v := range e.Attrs {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// GUID returns the entry's objectGUID in AD's string form, when it was read.
func (e *Entry) GUID() string { return FormatGUID([]byte(e.Get("objectGUID"))) }

// Change is one attribute change of a modify. Secret values are never logged.
type Change struct {
	Op     ChangeOp
	Attr   string
	Values []string
	Secret bool
}

// ChangeOp is add, replace or delete.
type ChangeOp int

// Modify operations.
const (
	Replace ChangeOp = iota
	Add
	Delete
)

func (o ChangeOp) String() string { return [...]string{"replace", "add", "delete"}[o] }

// Client is a pool of bound LDAP connections.
type Client struct {
	cfg    Config
	tls    *tls.Config
	url    *url.URL
	logger *slog.Logger
	pool   chan *goldap.Conn
	// slots bounds open connections; a slot is taken while a connection is in use or idle.
	slots chan struct{}
	ops   sync.Map // operation name → *atomic.Int64
	spent sync.Map // operation name → *atomic.Int64 (nanoseconds)
}

// New validates cfg and returns a Client; connections are opened on first use.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ldaps" && u.Scheme != "ldap") || u.Host == "" {
		return nil, fmt.Errorf("LDAP_URL %q is not an ldaps:// or ldap:// URL", cfg.URL)
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("LDAP_CA_FILE: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("LDAP_CA_FILE %s holds no PEM certificate", cfg.CAFile)
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 2
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Client{
		cfg: cfg, url: u, logger: logger,
		tls:   &tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12},
		pool:  make(chan *goldap.Conn, cfg.PoolSize),
		slots: make(chan struct{}, cfg.PoolSize),
	}, nil
}

// Close closes the idle connections.
func (c *Client) Close() {
	for {
		select {
		case conn := <-c.pool:
			_ = conn.Close()
			<-c.slots
		default:
			return
		}
	}
}

// Operations returns how many operations of each kind were sent (or, in dry run, logged).
func (c *Client) Operations() map[string]int64 {
	out := map[string]int64{}
	c.ops.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

// Durations returns the time spent waiting for the directory per kind of operation.
func (c *Client) Durations() map[string]time.Duration {
	out := map[string]time.Duration{}
	c.spent.Range(func(k, v any) bool { out[k.(string)] = time.Duration(v.(*atomic.Int64).Load()); return true })
	return out
}

func (c *Client) count(op string) {
	v, _ := c.ops.LoadOrStore(op, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (c *Client) timed(op string, start time.Time) {
	v, _ := c.spent.LoadOrStore(op, new(atomic.Int64))
	v.(*atomic.Int64).Add(int64(time.Since(start)))
}

// dial opens and binds one connection, over TLS only.
func (c *Client) dial() (*goldap.Conn, error) {
	conn, err := goldap.DialURL(c.cfg.URL, goldap.DialWithTLSConfig(c.tls))
	if err != nil {
		return nil, classify("dial", c.url.Host, err)
	}
	if c.url.Scheme == "ldap" {
		if err := conn.StartTLS(c.tls); err != nil {
			_ = conn.Close()
			return nil, classify("starttls", c.url.Host, err)
		}
	}
	if _, ok := conn.TLSConnectionState(); !ok {
		_ = conn.Close()
		return nil, errors.New("refusing to bind without TLS")
	}
	conn.SetTimeout(c.cfg.Timeout)
	if err := conn.Bind(c.cfg.BindDN, c.cfg.BindPassword); err != nil {
		_ = conn.Close()
		return nil, classify("bind", c.cfg.BindDN, err)
	}
	return conn, nil
}

// with runs fn on a pooled connection, dialing when none is idle; a connection that failed at
// the network level is dropped, and fn is retried once on a fresh one (every operation the
// writer sends is idempotent or recognised when repeated).
func (c *Client) with(ctx context.Context, fn func(*goldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		var conn *goldap.Conn
		select {
		case conn = <-c.pool:
		case c.slots <- struct{}{}:
			var err error
			if conn, err = c.dial(); err != nil {
				<-c.slots
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		err := fn(conn)
		if ClassOf(err) == ClassUnavailable && Code(err) == goldap.ErrorNetwork || conn.IsClosing() {
			_ = conn.Close()
			<-c.slots
			// The idle connections went through the same outage: drop them too.
			c.Close()
			if attempt == 0 && err != nil {
				continue
			}
			return err
		}
		c.pool <- conn
		return err
	}
}

// Ping checks that the directory answers (a RootDSE read).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.search(ctx, "", goldap.ScopeBaseObject, "(objectClass=*)", []string{"highestCommittedUSN"})
	return err
}

// HighestUSN returns the directory's highestCommittedUSN.
func (c *Client) HighestUSN(ctx context.Context) (int64, error) {
	entries, err := c.search(ctx, "", goldap.ScopeBaseObject, "(objectClass=*)", []string{"highestCommittedUSN"})
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	return strconv.ParseInt(entries[0].Get("highestCommittedUSN"), 10, 64)
}

// Search returns the entries under base matching filter, paged.
func (c *Client) Search(ctx context.Context, base, filter string, attrs []string) ([]*Entry, error) {
	return c.search(ctx, base, goldap.ScopeWholeSubtree, filter, attrs)
}

// Read returns one entry by DN, or nil when it does not exist.
func (c *Client) Read(ctx context.Context, dn string, attrs []string) (*Entry, error) {
	entries, err := c.search(ctx, dn, goldap.ScopeBaseObject, "(objectClass=*)", attrs)
	if Code(err) == goldap.LDAPResultNoSuchObject {
		return nil, nil
	}
	if err != nil || len(entries) == 0 {
		return nil, err
	}
	return entries[0], nil
}

func (c *Client) search(ctx context.Context, base string, scope int, filter string, attrs []string) ([]*Entry, error) {
	var out []*Entry
	err := c.with(ctx, func(conn *goldap.Conn) error {
		c.count("search")
		defer c.timed("search", time.Now())
		req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
		res, err := conn.SearchWithPaging(req, 500)
		if err != nil {
			return classify("search", base, err)
		}
		out = out[:0]
		for _, e := range res.Entries {
			entry := &Entry{DN: e.DN, Attrs: map[string][]string{}}
			for _, a := range e.Attributes {
				vals := make([]string, len(a.ByteValues))
				for i, b := range a.ByteValues {
					vals[i] = string(b)
				}
				entry.Attrs[a.Name] = vals
			}
			out = append(out, entry)
		}
		return nil
	})
	return out, err
}

// Members returns every value of a group's member attribute, with range retrieval: AD returns at
// most MaxValRange (1,500) values per read and names the next range in the attribute.
func (c *Client) Members(ctx context.Context, groupDN string) ([]string, error) {
	var members []string
	for start := 0; ; {
		entry, err := c.Read(ctx, groupDN, []string{fmt.Sprintf("member;range=%d-*", start)})
		if err != nil || entry == nil {
			return members, err
		}
		last := true
		for name, values := range entry.Attrs {
			lower := strings.ToLower(name)
			if !strings.HasPrefix(lower, "member") {
				continue
			}
			members = append(members, values...)
			if _, rng, ok := strings.Cut(lower, ";range="); ok {
				_, end, _ := strings.Cut(rng, "-")
				if end != "*" {
					n, err := strconv.Atoi(end)
					if err != nil {
						return nil, fmt.Errorf("group %q: bad range %q", pii.DN(groupDN), name)
					}
					start, last = n+1, false
				}
			}
		}
		if last {
			return members, nil
		}
	}
}

// AddEntry creates an entry.
func (c *Client) AddEntry(ctx context.Context, dn string, attrs map[string][]string) error {
	if c.cfg.DryRun {
		c.count("add")
		defer c.timed("add", time.Now())
		c.logger.InfoContext(ctx, "dry run: ldap add", "dn", dn, "attributes", describeAttrs(attrs))
		return nil
	}
	return c.with(ctx, func(conn *goldap.Conn) error {
		c.count("add")
		defer c.timed("add", time.Now())
		req := goldap.NewAddRequest(dn, nil)
		names := make([]string, 0, len(attrs))
		for name := range attrs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			req.Attribute(name, attrs[name])
		}
		if err := conn.Add(req); err != nil {
			return classify("add", dn, err)
		}
		return nil
	})
}

// Modify applies changes to one entry, atomically.
func (c *Client) Modify(ctx context.Context, dn string, changes []Change) error {
	if c.cfg.DryRun {
		c.count("modify")
		defer c.timed("modify", time.Now())
		c.logger.InfoContext(ctx, "dry run: ldap modify", "dn", dn, "changes", describeChanges(changes))
		return nil
	}
	return c.with(ctx, func(conn *goldap.Conn) error {
		c.count("modify")
		defer c.timed("modify", time.Now())
		req := goldap.NewModifyRequest(dn, nil)
		for _, ch := range changes {
			switch ch.Op {
			case Add:
				req.Add(ch.Attr, ch.Values)
			case Delete:
				req.Delete(ch.Attr, ch.Values)
			default:
				req.Replace(ch.Attr, ch.Values)
			}
		}
		if err := conn.Modify(req); err != nil {
			return classify("modify", dn, err)
		}
		return nil
	})
}

// ModifyDN renames and/or moves an entry; newSuperior "" keeps its parent.
func (c *Client) ModifyDN(ctx context.Context, dn, newRDN, newSuperior string) error {
	if c.cfg.DryRun {
		c.count("modifydn")
		defer c.timed("modifydn", time.Now())
		c.logger.InfoContext(ctx, "dry run: ldap modifydn", "dn", dn, "new_rdn", newRDN, "new_superior", newSuperior)
		return nil
	}
	return c.with(ctx, func(conn *goldap.Conn) error {
		c.count("modifydn")
		defer c.timed("modifydn", time.Now())
		if err := conn.ModifyDN(goldap.NewModifyDNRequest(dn, newRDN, true, newSuperior)); err != nil {
			return classify("modifydn", dn, err)
		}
		return nil
	})
}

// DeleteEntry deletes a leaf entry.
func (c *Client) DeleteEntry(ctx context.Context, dn string) error {
	if c.cfg.DryRun {
		c.count("delete")
		defer c.timed("delete", time.Now())
		c.logger.InfoContext(ctx, "dry run: ldap delete", "dn", dn)
		return nil
	}
	return c.with(ctx, func(conn *goldap.Conn) error {
		c.count("delete")
		defer c.timed("delete", time.Now())
		if err := conn.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			return classify("delete", dn, err)
		}
		return nil
	})
}

// describeAttrs renders an add for the dry-run log: personal values (names, mail, phones) only
// when package pii allows them.
func describeAttrs(attrs map[string][]string) string {
	allow := pii.AllowedByEnvironment()
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		values := fmt.Sprintf("%q", attrs[name])
		if !allow && pii.PersonalKey(name) {
			values = pii.Redacted
		}
		fmt.Fprintf(&b, "%s=%s; ", name, values)
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// describeChanges renders a modify for the dry-run log: never a secret, personal values only
// when package pii allows them.
func describeChanges(changes []Change) string {
	allow := pii.AllowedByEnvironment()
	var b strings.Builder
	for _, ch := range changes {
		values := fmt.Sprintf("%q", ch.Values)
		if ch.Secret || !allow && pii.PersonalKey(ch.Attr) {
			values = pii.Redacted
		}
		fmt.Fprintf(&b, "%s %s %s; ", ch.Op, ch.Attr, values)
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// fileTimeEpoch is 1970-01-01 in Windows FILETIME: 100-nanosecond intervals since 1601-01-01.
const fileTimeEpoch = 116444736000000000

// FileTime renders t as AD writes an Interval attribute such as pwdLastSet.
func FileTime(t time.Time) string {
	return strconv.FormatInt(t.UnixNano()/100+fileTimeEpoch, 10)
}

// ParseFileTime reads an Interval attribute such as pwdLastSet. ok is false for an absent or
// zero value (pwdLastSet 0: the password must be changed at next logon, its time unknown).
func ParseFileTime(value string) (t time.Time, ok bool) {
	intervals, err := strconv.ParseInt(value, 10, 64)
	if err != nil || intervals <= fileTimeEpoch {
		return time.Time{}, false
	}
	return time.Unix(0, (intervals-fileTimeEpoch)*100).UTC(), true
}

// UnicodePwd encodes a password for AD's unicodePwd: UTF-16LE of the password in double quotes.
func UnicodePwd(password string) string {
	quoted := "\"" + password + "\""
	out := make([]byte, 0, 2*len(quoted))
	for _, r := range quoted {
		if r > 0xFFFF {
			r = '?'
		}
		out = append(out, byte(r), byte(r>>8))
	}
	return string(out)
}

// FormatGUID renders a 16-byte objectGUID as AD prints it (the first three fields little-endian).
func FormatGUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%s",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], hex.EncodeToString(b[10:]))
}

// GUIDFilter returns a filter matching the object with the given string GUID.
func GUIDFilter(guid string) (string, error) {
	raw, err := hex.DecodeString(strings.ReplaceAll(guid, "-", ""))
	if err != nil || len(raw) != 16 {
		return "", fmt.Errorf("%q is not an objectGUID", guid)
	}
	b := []byte{raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]}
	b = append(b, raw[8:]...)
	var f strings.Builder
	f.WriteString("(objectGUID=")
	for _, x := range b {
		fmt.Fprintf(&f, "\\%02x", x)
	}
	f.WriteString(")")
	return f.String(), nil
}

// EscapeFilter escapes a value for use in a search filter.
func EscapeFilter(s string) string { return goldap.EscapeFilter(s) }

// EscapeRDNValue escapes a value for use as an RDN value (RFC 4514), '=' included: AD and Samba
// refuse a value with an unescaped '=' (LDAP 34, invalidDNSyntax), which go-ldap leaves alone.
func EscapeRDNValue(s string) string { return strings.ReplaceAll(goldap.EscapeDN(s), "=", `\=`) }

// SameDN reports whether two DNs name the same entry (case-insensitively).
func SameDN(a, b string) bool {
	da, errA := goldap.ParseDN(a)
	db, errB := goldap.ParseDN(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return da.EqualFold(db)
}

// Under reports whether dn is base or below it.
func Under(dn, base string) bool {
	d, errD := goldap.ParseDN(dn)
	b, errB := goldap.ParseDN(base)
	if errD != nil || errB != nil {
		return false
	}
	return d.EqualFold(b) || b.AncestorOfFold(d)
}

// Parent returns dn's first RDN and the DN of its parent, as written (split at the first
// unescaped comma).
func Parent(dn string) (rdn, parent string) {
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',':
			return dn[:i], dn[i+1:]
		}
	}
	return dn, ""
}
