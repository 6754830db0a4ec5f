package emulator

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidUserPrincipalName checks that whatever the rule accepts is a userPrincipalName Graph
// accepts: ASCII, one "@", an alias of at most 64 characters not ending with ".", at most 113 in
// all.
func FuzzValidUserPrincipalName(f *testing.F) {
	for _, seed := range []string{
		"grace@corp.example.test", "renée.ødegård@corp.example.test", "a@b@c", "a.@b.c", "@corp.test",
		"o'neil!#^~_-@corp.example.test", strings.Repeat("a", 64) + "@" + strings.Repeat("d", 44) + ".com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, principalName string) {
		if !validUserPrincipalName(principalName) {
			return
		}
		alias, domain, _ := strings.Cut(principalName, "@")
		switch {
		case !utf8.ValidString(principalName) || strings.IndexFunc(principalName, func(r rune) bool { return r > 0x7e || r <= ' ' }) >= 0:
			t.Errorf("accepted %q with a character outside printable ASCII", principalName)
		case strings.Count(principalName, "@") != 1:
			t.Errorf("accepted %q without exactly one @", principalName)
		case alias == "" || len(alias) > 64 || strings.HasSuffix(alias, "."):
			t.Errorf("accepted %q with alias %q", principalName, alias)
		case domain == "" || len(principalName) > 113:
			t.Errorf("accepted %q (domain %q, %d characters)", principalName, domain, len(principalName))
		}
	})
}

// FuzzValidMailNickname checks that an accepted mailNickname is 1 to 64 ASCII characters
// without Graph's forbidden ones.
func FuzzValidMailNickname(f *testing.F) {
	for _, seed := range []string{"grace.hopper", "grace hopper", "renée", "a@b", "x[1]", strings.Repeat("n", 65)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, nickname string) {
		if !validMailNickname(nickname) {
			return
		}
		if nickname == "" || len(nickname) > 64 || strings.ContainsAny(nickname, `@()\[]";:<>, `) ||
			strings.IndexFunc(nickname, func(r rune) bool { return r > 0x7f || r < ' ' || r == 0x7f }) >= 0 {
			t.Errorf("accepted mailNickname %q", nickname)
		}
	})
}
