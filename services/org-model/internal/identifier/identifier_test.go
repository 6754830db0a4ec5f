package identifier

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestFold(t *testing.T) {
	tests := map[string]string{
		"Renée Ødegård": "Renee Odegard",
		"Straße":        "Strasse",
		"Æsir Łukasz":   "AEsir Lukasz",
		"Zoë Ångström":  "Zoe Angstrom",
		"Đorđe Þór":     "Dorde THor",
		"Иван":          "Иван",
	}
	for in, want := range tests {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFoldOnManyGoroutines: workers are computed on every core and the replay identifies them on
// a goroutine of its own, so folding runs at once on several; each call folds its own string (a
// transformer shared between calls mixed them, and the race detector saw it).
func TestFoldOnManyGoroutines(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				in, want := fmt.Sprintf("Zoë Ångström-%d-%d", g, i), fmt.Sprintf("Zoe Angstrom-%d-%d", g, i)
				if got := Fold(in); got != want {
					t.Errorf("Fold(%q) = %q, want %q", in, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestUPN(t *testing.T) {
	domains := []string{"corp.example.com", "example.org"}
	long := strings.Repeat("a", 65)
	tests := []struct {
		name      string
		candidate string
		want      string
		wantErr   error
	}{
		{name: "diacritics in a work e-mail", candidate: "renée.ødegård@corp.example.com", want: "renee.odegard@corp.example.com"},
		{name: "upper case and spaces", candidate: "  Jane Doe@Corp.Example.com ", want: "janedoe@corp.example.com"},
		{name: "alias only gets the default domain", candidate: "jane.doe", want: "jane.doe@corp.example.com"},
		{name: "second owned domain", candidate: "jane@example.org", want: "jane@example.org"},
		{name: "refused symbols removed", candidate: "o'brien,(jr)@corp.example.com", want: "o'brienjr@corp.example.com"},
		{name: "allowed symbols kept", candidate: "a_b-c!d#e^f~g@corp.example.com", want: "a_b-c!d#e^f~g@corp.example.com"},
		{name: "dots tidied", candidate: ".jane..doe.@corp.example.com", want: "jane.doe@corp.example.com"},
		{name: "sharp s", candidate: "strauß", want: "strauss@corp.example.com"},
		{name: "64-character alias", candidate: long[:64], want: long[:64] + "@corp.example.com"},
		{name: "65-character alias", candidate: long, wantErr: ErrTooLong},
		{name: "empty", candidate: "  ", wantErr: ErrEmpty},
		{name: "only refused characters", candidate: "()@corp.example.com", wantErr: ErrEmpty},
		{name: "letters without an ASCII form", candidate: "иван@corp.example.com", wantErr: ErrCharacters},
		{name: "foreign domain", candidate: "jane@gmail.com", wantErr: ErrForeignHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UPN(tt.candidate, domains, "corp.example.com")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("UPN(%q) error = %v, want %v", tt.candidate, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("UPN(%q) = %q, want %q", tt.candidate, got, tt.want)
			}
			if err == nil && (!ValidUPN(got) || !ValidMailNickname(strings.Split(got, "@")[0])) {
				t.Errorf("UPN(%q) = %q, which is not itself valid", tt.candidate, got)
			}
		})
	}
}

func TestUPNTooLongAsAWhole(t *testing.T) {
	domain := strings.Repeat("d", 40) + ".example" // 48 characters
	upn := strings.Repeat("a", 64) + "@" + domain  // 113 characters
	if _, err := UPN(upn, []string{domain}, domain); err != nil {
		t.Fatalf("a UPN of exactly %d characters: %v", len(upn), err)
	}
	longer := "x" + domain
	if _, err := UPN(strings.Repeat("a", 64)+"@"+longer, []string{longer}, longer); !errors.Is(err, ErrBadDomain) {
		t.Fatalf("a 49-character domain: error %v, want %v", err, ErrBadDomain)
	}
}

func TestWithUPNSuffix(t *testing.T) {
	tests := []struct{ upn, want string }{
		{"jane.doe@corp.example.com", "jane.doe7@corp.example.com"},
		{strings.Repeat("a", 64) + "@x.com", strings.Repeat("a", 63) + "7@x.com"},
		{strings.Repeat("a", 62) + ".b@x.com", strings.Repeat("a", 62) + "7@x.com"},
	}
	for _, tt := range tests {
		got := WithUPNSuffix(tt.upn, 7)
		if got != tt.want {
			t.Errorf("WithUPNSuffix(%q, 7) = %q, want %q", tt.upn, got, tt.want)
		}
		if !ValidUPN(got) {
			t.Errorf("WithUPNSuffix(%q, 7) = %q is not valid", tt.upn, got)
		}
	}
}

func TestMailNickname(t *testing.T) {
	tests := map[string]bool{
		"jane.doe": true, "o'brien": true, "": false, "jane doe": false, "jane@doe": false,
		"a(b)": false, "renée": false, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
	}
	for in, want := range tests {
		if got := ValidMailNickname(in); got != want {
			t.Errorf("ValidMailNickname(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSAMAccountName(t *testing.T) {
	tests := []struct {
		name, candidate, want string
		wantErr               error
	}{
		{name: "diacritics folded", candidate: "rØdegård", want: "rodegard"},
		{name: "refused characters removed", candidate: `j"doe/[x]:;|=,+*?<>@`, want: "jdoex"},
		{name: "cut to 20 characters", candidate: "abcdefghijklmnopqrstuvwxyz", want: "abcdefghijklmnopqrst"},
		{name: "cut counts characters, not bytes", candidate: strings.Repeat("и", 25), want: strings.Repeat("и", 20)},
		{name: "no trailing dot after the cut", candidate: strings.Repeat("a", 19) + ".b", want: strings.Repeat("a", 19)},
		{name: "empty", candidate: " ./ ", wantErr: ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SAMAccountName(tt.candidate)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SAMAccountName(%q) error = %v, want %v", tt.candidate, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("SAMAccountName(%q) = %q, want %q", tt.candidate, got, tt.want)
			}
		})
	}
	if got := WithSAMSuffix(strings.Repeat("ø", 20), 12); got != strings.Repeat("ø", 18)+"12" || !utf8.ValidString(got) {
		t.Errorf("WithSAMSuffix = %q", got)
	}
}

func TestValidMail(t *testing.T) {
	tests := map[string]bool{
		"jane.doe@corp.example.com": true, "renée.ødegård@corp.example.com": false, "jane@": false,
		"a@b@c.com": false, "jane doe@x.com": false, ".jane@x.com": false, "jane+tag@x.com": true,
	}
	for in, want := range tests {
		if got := ValidMail(in); got != want {
			t.Errorf("ValidMail(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzUPN checks that whatever a policy expression yields, an accepted UPN is valid for Graph and
// its alias is a valid mailNickname.
func FuzzUPN(f *testing.F) {
	for _, seed := range []string{"renée.ødegård@corp.example.com", "jane", "..@@..", "иван", strings.Repeat("ß", 40)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, candidate string) {
		upn, err := UPN(candidate, []string{"corp.example.com"}, "corp.example.com")
		if err != nil {
			return
		}
		local, _, _ := strings.Cut(upn, "@")
		if !ValidUPN(upn) || !ValidMailNickname(local) || len(upn) > MaxUPN {
			t.Fatalf("UPN(%q) = %q, not valid", candidate, upn)
		}
		for n := 2; n < 1000; n *= 7 {
			if suffixed := WithUPNSuffix(upn, n); !ValidUPN(suffixed) {
				t.Fatalf("WithUPNSuffix(%q, %d) = %q, not valid", upn, n, suffixed)
			}
		}
	})
}

// FuzzSAMAccountName checks that an accepted sAMAccountName keeps AD's rules, whole characters
// included.
func FuzzSAMAccountName(f *testing.F) {
	for _, seed := range []string{"rødegård", strings.Repeat("é", 30), `a"b`, "\xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, candidate string) {
		sam, err := SAMAccountName(candidate)
		if err != nil {
			return
		}
		if !utf8.ValidString(sam) || utf8.RuneCountInString(sam) > MaxSAMAccountName || strings.ContainsAny(sam, samRefused) || !ValidSAMAccountName(sam) {
			t.Fatalf("SAMAccountName(%q) = %q, not valid", candidate, sam)
		}
		if suffixed := WithSAMSuffix(sam, 123); !utf8.ValidString(suffixed) || utf8.RuneCountInString(suffixed) > MaxSAMAccountName {
			t.Fatalf("WithSAMSuffix(%q) = %q, not valid", sam, suffixed)
		}
	})
}
