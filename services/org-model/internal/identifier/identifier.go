// Package identifier normalises and validates the account identifiers org-model generates from
// the policy's candidates, for the directory that will hold them: Entra ID's userPrincipalName
// and mailNickname (Microsoft Graph's rules) and Active Directory's sAMAccountName.
//
// Normalising folds diacritics to ASCII (é→e, ø→o, æ→ae, ß→ss, ł→l), lower-cases, and removes
// spaces and the characters the directory refuses. A value that is still not acceptable (empty,
// too long, a domain orgsync does not own) is refused with an error that names the rule broken,
// never the value, so it can go into status and logs without personal data.
//
// Everything here is a pure function, safe for concurrent use.
package identifier

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Directory property names, as the directories spell them (and as WriterResult.property does).
const (
	PropertyUPN            = "userPrincipalName"
	PropertyMailNickname   = "mailNickname"
	PropertySAMAccountName = "sAMAccountName"
)

// Graph's and AD's limits.
const (
	// MaxUPNLocalPart is Entra's limit on a userPrincipalName's alias (before "@").
	MaxUPNLocalPart = 64
	// MaxUPNDomain is Entra's limit on a userPrincipalName's domain.
	MaxUPNDomain = 48
	// MaxUPN is Entra's limit on a whole userPrincipalName.
	MaxUPN = 113
	// MaxMailNickname is Graph's limit on mailNickname.
	MaxMailNickname = 64
	// MaxSAMAccountName is AD's limit on sAMAccountName, in characters (not bytes).
	MaxSAMAccountName = 20
)

// Reasons a candidate is refused. They name the rule, never the value.
var (
	ErrEmpty       = errors.New("empty after normalising")
	ErrTooLong     = errors.New("too long")
	ErrCharacters  = errors.New("has letters without an ASCII form, which Entra refuses")
	ErrForeignHost = errors.New("domain is not one of the policy's upnDomains")
	ErrBadDomain   = errors.New("domain is not a valid host name")
)

// upnAliasSymbols are the symbols Entra allows in a userPrincipalName's alias besides ASCII
// letters and digits.
const upnAliasSymbols = `'.-_!#^~`

// mailNicknameRefused are the ASCII characters Graph refuses in mailNickname.
const mailNicknameRefused = `@()\[]";:<>, `

// samRefused are the characters AD refuses in sAMAccountName.
const samRefused = `"/\[]:;|=,+*?<>@`

// markStrippers hands out transformers that remove combining marks. A transform.Chain keeps
// state between calls, so one shared by goroutines (the parallel computation of workers, the
// replay's identifying goroutine) would mix their strings: each call takes its own.
var markStrippers = sync.Pool{New: func() any {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}}

// StripMarks removes combining marks (accents) from s: "Zoë Ångström" → "Zoe Angstrom"; false
// when s cannot be transformed. ASCII is returned as it is, without a transform. It is safe for
// concurrent use.
func StripMarks(s string) (string, bool) {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii {
		return s, true
	}
	t := markStrippers.Get().(transform.Transformer)
	defer markStrippers.Put(t)
	stripped, _, err := transform.String(t, s)
	return stripped, err == nil
}

// letters that do not decompose into a base letter and a combining mark.
var undecomposed = strings.NewReplacer(
	"ß", "ss", "ẞ", "SS", "ø", "o", "Ø", "O", "æ", "ae", "Æ", "AE", "œ", "oe", "Œ", "OE",
	"ł", "l", "Ł", "L", "đ", "d", "Đ", "D", "ð", "d", "Ð", "D", "þ", "th", "Þ", "TH",
	"ħ", "h", "Ħ", "H", "ı", "i", "ŧ", "t", "Ŧ", "T", "ŀ", "l", "Ŀ", "L", "ĸ", "k", "ŉ", "n",
	"ƒ", "f", "ſ", "s",
)

// Fold removes diacritics: "Renée Ødegård" → "Renee Odegard", "Straße" → "Strasse". Letters of
// scripts without an ASCII form (Cyrillic, CJK, …) are left as they are.
func Fold(s string) string {
	// Bytes that are not UTF-8 cannot be letters of a name; dropping them first lets the
	// transform fold the rest.
	s = strings.ToValidUTF8(s, "")
	folded, ok := StripMarks(s)
	if !ok {
		folded = s
	}
	return undecomposed.Replace(folded)
}

// UPN normalises a userPrincipalName candidate and checks it against Entra's rules: an alias of
// 1 to 64 of A-Z a-z 0-9 ' . - _ ! # ^ ~ (no leading, trailing or doubled dot), a domain among
// domains, at most 113 characters in all. A candidate without "@" gets defaultDomain. The
// result is lower-case; it is also a valid AD userPrincipalName, whose rules are looser.
func UPN(candidate string, domains []string, defaultDomain string) (string, error) {
	value := strings.ToLower(Fold(strings.TrimSpace(candidate)))
	local, domain := value, defaultDomain
	if at := strings.LastIndexByte(value, '@'); at >= 0 {
		local, domain = value[:at], value[at+1:]
	}
	if hasNonASCIILetter(local) {
		return "", ErrCharacters
	}
	local = upnAlias(local)
	if local == "" {
		return "", ErrEmpty
	}
	if len(local) > MaxUPNLocalPart {
		return "", fmt.Errorf("alias %w (%d characters, at most %d)", ErrTooLong, len(local), MaxUPNLocalPart)
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	if !contains(domains, domain) && domain != defaultDomain {
		return "", ErrForeignHost
	}
	if len(domain) > MaxUPNDomain || !validHostName(domain) {
		return "", ErrBadDomain
	}
	upn := local + "@" + domain
	if len(upn) > MaxUPN {
		return "", fmt.Errorf("%w (%d characters, at most %d)", ErrTooLong, len(upn), MaxUPN)
	}
	return upn, nil
}

// hasNonASCIILetter says s (folded) still has a letter or digit outside ASCII: dropping it would
// make a different name, so the candidate is refused instead.
func hasNonASCIILetter(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return true
		}
	}
	return false
}

// upnAlias keeps what Entra allows of an alias and tidies its dots.
func upnAlias(s string) string {
	var b strings.Builder
	for _, r := range s {
		if isASCIIAlphanumeric(r) || strings.ContainsRune(upnAliasSymbols, r) {
			if r == '.' && strings.HasSuffix(b.String(), ".") {
				continue
			}
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), ".")
}

// ValidUPN says whether upn already satisfies Entra's rules as UPN would produce it (lower-case,
// normalised); recorded identifiers are checked with it.
func ValidUPN(upn string) bool {
	at := strings.LastIndexByte(upn, '@')
	if at < 0 {
		return false
	}
	got, err := UPN(upn, []string{upn[at+1:]}, "")
	return err == nil && got == upn
}

// WithUPNSuffix is upn with n added to its alias (jane.doe@x → jane.doe2@x), the alias cut so the
// result keeps within the limits.
func WithUPNSuffix(upn string, n int) string {
	local, domain, _ := strings.Cut(upn, "@")
	suffix := strconv.Itoa(n)
	keep := min(len(local), MaxUPNLocalPart-len(suffix), MaxUPN-len(domain)-1-len(suffix))
	return strings.TrimRight(local[:max(keep, 0)], ".") + suffix + "@" + domain
}

// ValidMailNickname says whether s is a mailNickname Graph accepts: 1 to 64 ASCII characters
// without @ ( ) \ [ ] " ; : < > , or space.
func ValidMailNickname(s string) bool {
	if s == "" || len(s) > MaxMailNickname {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || unicode.IsControl(r) || strings.ContainsRune(mailNicknameRefused, r) {
			return false
		}
	}
	return true
}

// SAMAccountName normalises an sAMAccountName candidate for AD: diacritics folded, lower-case,
// spaces, control characters and " / \ [ ] : ; | = , + * ? < > @ removed, cut to 20 characters
// (never inside a UTF-8 sequence), no trailing dot.
func SAMAccountName(candidate string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(Fold(candidate)) {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) || strings.ContainsRune(samRefused, r) {
			continue
		}
		b.WriteRune(r)
	}
	sam := strings.TrimRight(CutRunes(strings.Trim(b.String(), "."), MaxSAMAccountName), ".")
	if sam == "" {
		return "", ErrEmpty
	}
	return sam, nil
}

// ValidSAMAccountName says whether s is an sAMAccountName as SAMAccountName would produce it.
func ValidSAMAccountName(s string) bool {
	got, err := SAMAccountName(s)
	return err == nil && got == s
}

// WithSAMSuffix is sam with n added, cut so the result keeps within 20 characters.
func WithSAMSuffix(sam string, n int) string {
	suffix := strconv.Itoa(n)
	return strings.TrimRight(CutRunes(sam, MaxSAMAccountName-len(suffix)), ".") + suffix
}

// CutRunes keeps at most n characters of s, never splitting a UTF-8 sequence.
func CutRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// ValidMail says whether address is an SMTP address Graph accepts in mail: one "@", a local part
// of 1 to 64 printable ASCII characters without spaces or ( ) < > , ; : \ " [ ] and without a
// leading, trailing or doubled dot, and a host name.
func ValidMail(address string) bool {
	if strings.Count(address, "@") != 1 {
		return false
	}
	local, host, _ := strings.Cut(address, "@")
	if local == "" || len(local) > 64 || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return false
	}
	for _, r := range local {
		if r <= ' ' || r > '~' || strings.ContainsRune(`()<>,;:\"[]`, r) {
			return false
		}
	}
	return validHostName(host)
}

// validHostName accepts dot-separated labels of ASCII letters, digits and inner hyphens.
func validHostName(host string) bool {
	if host == "" {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !isASCIIAlphanumeric(r) && r != '-' {
				return false
			}
		}
	}
	return true
}

func isASCIIAlphanumeric(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
