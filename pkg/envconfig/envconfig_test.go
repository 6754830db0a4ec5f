package envconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := New(Map(map[string]string{
		"NAME":         "hr-ingest",
		"COUNT":        "7",
		"BAD_COUNT":    "seven",
		"WAIT":         "5s",
		"BAD_WAIT":     "soon",
		"FLAG":         "true",
		"TOKEN_FILE":   secretFile,
		"MISSING_FILE": filepath.Join(t.TempDir(), "nope"),
	}))
	if got := env.String("NAME", "x"); got != "hr-ingest" {
		t.Errorf("String = %q", got)
	}
	if got := env.String("UNSET", "def"); got != "def" {
		t.Errorf("String default = %q", got)
	}
	if got := env.Int("COUNT", 1); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := env.Duration("WAIT", time.Second); got != 5*time.Second {
		t.Errorf("Duration = %v", got)
	}
	if !env.Bool("FLAG", false) {
		t.Error("Bool = false")
	}
	if got := env.Secret("TOKEN"); got != "s3cr3t" {
		t.Errorf("Secret from file = %q", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}

	env.Int("BAD_COUNT", 1)
	env.Duration("BAD_WAIT", time.Second)
	env.Required("ABSENT")
	env.Secret("MISSING")
	err := env.Err()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, name := range []string{"BAD_COUNT", "BAD_WAIT", "ABSENT", "MISSING_FILE"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
