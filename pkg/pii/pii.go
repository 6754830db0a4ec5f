// Package pii is orgsync's policy for personal data in telemetry: by default spans, span events
// and log lines carry ids only (worker ids, object ids, event ids), never names, e-mail addresses,
// userPrincipalNames or phone numbers. Setting ORGSYNC_TELEMETRY_PII=allow lets them through, for
// debugging on a non-production tenant.
//
// Redaction works two ways, because neither alone is enough: attributes whose key names personal
// data (given_name, displayName, user.email, …) are withheld whatever their value, and every other
// string — URLs, error messages, span names — is scrubbed of e-mail-shaped values (e-mail
// addresses and UPNs) and, in URLs, of query strings (Graph's $filter) and path segments holding
// an '@' (Graph's /users/{userPrincipalName}).
//
// It is meant for orgsync's own services, not for outside use. Every function is safe for
// concurrent use.
package pii

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// Variable is the environment variable that sets the policy: "allow" lets personal data into
// telemetry; empty or "redact" (the default) keeps it out.
const Variable = "ORGSYNC_TELEMETRY_PII"

// Redacted replaces a withheld value.
const Redacted = "[redacted]"

// Allowed reads the policy from lookup (os.LookupEnv in production). An unknown value is an error
// naming the variable; the policy then stays at redact.
func Allowed(lookup func(string) (string, bool)) (bool, error) {
	value, _ := lookup(Variable)
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "", "redact", "deny", "none":
		return false, nil
	case "allow":
		return true, nil
	default:
		return false, fmt.Errorf("%s: %q is not allow or redact", Variable, value)
	}
}

// AllowedByEnvironment reads the process's policy from the environment each time (errors are
// rare; reading it late lets tests set it). An unknown value keeps the policy at redact.
func AllowedByEnvironment() bool {
	allow, _ := Allowed(os.LookupEnv)
	return allow
}

// DN returns dn for an error or a log line under the process's policy: as is with
// ORGSYNC_TELEMETRY_PII=allow, else with RedactDN.
func DN(dn string) string {
	if AllowedByEnvironment() {
		return dn
	}
	return RedactDN(dn)
}

// Name returns a display name (or any other personal value without a recognisable shape) for an
// error or a log line under the process's policy: as is with ORGSYNC_TELEMETRY_PII=allow, else
// Redacted.
func Name(name string) string {
	if AllowedByEnvironment() || name == "" {
		return name
	}
	return Redacted
}

// RedactDN keeps a distinguished name's attribute types and its domain (the trailing DC
// components) and replaces every other value with Redacted: "CN=Doe\\, Jane,OU=Sales,DC=corp,
// DC=example" becomes "CN=[redacted],OU=[redacted],DC=corp,DC=example". A value that is not a DN
// becomes Redacted.
func RedactDN(dn string) string {
	type component struct {
		attr, value string
		sep         byte
	}
	var components []component
	start := 0
	add := func(end int, sep byte) {
		attr, value, found := strings.Cut(dn[start:end], "=")
		if !found {
			attr = ""
		}
		components = append(components, component{strings.TrimSpace(attr), strings.TrimSpace(value), sep})
	}
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',', '+', ';':
			add(i, dn[i])
			start = i + 1
		}
	}
	add(len(dn), 0)
	// The domain is the run of DC components at the end; a DC before another type is data.
	domainFrom := len(components)
	for domainFrom > 0 && strings.EqualFold(components[domainFrom-1].attr, "dc") {
		domainFrom--
	}
	var b strings.Builder
	for i, c := range components {
		switch {
		case c.attr == "":
			b.WriteString(Redacted)
		case i >= domainFrom:
			b.WriteString(c.attr + "=" + c.value)
		default:
			b.WriteString(c.attr + "=" + Redacted)
		}
		if c.sep != 0 {
			b.WriteByte(c.sep)
		}
	}
	return b.String()
}

// dnShaped matches distinguished names in text: an RDN of a common type (cn, ou, dc, uid, o, l,
// st, c, street) followed by more RDNs of any type, values with backslash escapes (doubled, as
// %q prints them). A DN in quotes ends at the quote; one at the end of a sentence may take the
// words after its last value with it, which then are redacted too unless it is a DC.
var dnShaped = regexp.MustCompile(`(?i)\b(?:cn|ou|dc|uid|o|l|st|c|street)=(?:\\+.|[^,+;"'\\\n])*(?:[,+;]\s*(?:[a-z][a-z0-9-]*|[0-9]+(?:\.[0-9]+)+)=(?:\\+.|[^,+;"'\\\n])*)*`)

// personalKeys are normalised attribute names (lower case, letters and digits only) that hold
// personal data, matched against a key's whole name and its last dotted segment.
var personalKeys = map[string]bool{
	"givenname": true, "familyname": true, "surname": true, "lastname": true, "firstname": true,
	"middlename": true, "preferredname": true, "displayname": true, "fullname": true,
	"email": true, "mail": true, "emails": true, "personalemail": true, "workemail": true,
	"upn": true, "userprincipalname": true, "principalname": true, "mailnickname": true,
	"phone": true, "businessphone": true, "mobilephone": true, "phonenumber": true,
	"username": true, "useremail": true, "userfullname": true, "streetaddress": true, "homeaddress": true,
	"birthdate": true, "dateofbirth": true,
	// LDAP's names: a DN, its CN (the display name), the surname, phone numbers.
	"dn": true, "distinguishedname": true, "cn": true, "sn": true, "telephonenumber": true, "mobile": true,
}

// PersonalKey reports whether an attribute or log key names personal data, e.g. "given_name",
// "displayName", "user.email" or "upn". Keys of ids ("worker_id", "user.id") are not personal.
func PersonalKey(key string) bool {
	if personalKeys[normalise(key)] {
		return true
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return personalKeys[normalise(key[i+1:])]
	}
	return false
}

func normalise(key string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// emailShaped matches e-mail addresses and userPrincipalNames, also percent-encoded ("%40").
var emailShaped = regexp.MustCompile(`(?i)[a-z0-9._%+'\-]+(@|%40)[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}`)

// Scrub replaces e-mail-shaped values in s (addresses, UPNs) with Redacted, and the values of
// distinguished names in s as RedactDN does.
func Scrub(s string) string {
	if strings.Contains(s, "@") || strings.Contains(s, "%40") {
		s = emailShaped.ReplaceAllString(s, Redacted)
	}
	if strings.Contains(s, "=") {
		s = dnShaped.ReplaceAllStringFunc(s, RedactDN)
	}
	return s
}

// URL keeps a URL's scheme, host and path, replacing its query with Redacted and any path segment
// holding an '@' with Redacted: "https://graph/v1.0/users?$filter=…" becomes
// "https://graph/v1.0/users?[redacted]". A value that is not a URL is scrubbed as text.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Scrub(raw)
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	hadQuery := u.RawQuery != "" || u.ForceQuery
	u.RawQuery, u.ForceQuery = "", false
	if strings.Contains(u.Path, "@") {
		segments := strings.Split(u.Path, "/")
		for i, segment := range segments {
			if strings.Contains(segment, "@") {
				segments[i] = redactedSegment
			}
		}
		u.Path, u.RawPath = strings.Join(segments, "/"), ""
	}
	out := strings.ReplaceAll(u.String(), redactedSegment, Redacted)
	if hadQuery {
		out += "?" + Redacted
	}
	return Scrub(out)
}

// redactedSegment stands for a withheld path segment until the URL is a string again (URL
// escaping would otherwise encode Redacted's brackets).
const redactedSegment = "REDACTED-SEGMENT"

// urlKeys are attribute keys whose values are URLs or parts of one.
var urlKeys = map[string]bool{
	"url.full": true, "http.url": true, "url.original": true, "http.target": true, "url.path": true,
}

// queryKeys are attribute keys whose values are query strings.
var queryKeys = map[string]bool{"url.query": true, "db.statement": true, "db.query.text": true}

// Value returns the value to record for a string attribute key under the redact policy, and false
// when the attribute must be withheld altogether.
func Value(key, value string) (string, bool) {
	switch {
	case PersonalKey(key):
		return Redacted, false
	case urlKeys[key]:
		return URL(value), true
	case queryKeys[key]:
		if value == "" {
			return value, true
		}
		return Redacted, true
	default:
		return Scrub(value), true
	}
}
