package sambadc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck shows the one-line reasons `make run` prints when it skips AD, and that a machine
// with Samba, root and the repository's script gets the script.
func TestCheck(t *testing.T) {
	repo := t.TempDir()
	script := filepath.Join(repo, "scripts", "samba-dc.sh")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(repo, "deploy", "local")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	installed := func(programs ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, p := range programs {
				if name == p {
					return name, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	root := func() int { return 0 }
	tests := []struct {
		name       string
		host       Host
		wantScript string
		wantReason string
	}{
		{"everything there", Host{LookPath: installed("samba", "samba-tool"), Geteuid: root, Dir: nested}, script, ""},
		{"samba in /usr/sbin outside PATH", Host{LookPath: installed("/usr/sbin/samba", "samba-tool"), Geteuid: root, Dir: repo}, script, ""},
		{"no samba", Host{LookPath: installed("samba-tool"), Geteuid: root, Dir: repo}, "", "Samba is not installed (no samba; scripts/install-deps.sh installs the Debian package samba)"},
		{"no samba-tool", Host{LookPath: installed("samba"), Geteuid: root, Dir: repo}, "", "Samba is not installed (no samba-tool;"},
		{"not root", Host{LookPath: installed("samba", "samba-tool"), Geteuid: func() int { return 1000 }, Dir: repo}, "", "run as root (it sets file ownership and ACLs, and listens on ports 389 and 636), and this runs as uid 1000"},
		{"outside the repository", Host{LookPath: installed("samba", "samba-tool"), Geteuid: root, Dir: t.TempDir()}, "", "scripts/samba-dc.sh is not in the working directory or above it"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			got, err := Check(test.host)
			if test.wantReason == "" {
				if err != nil || got != test.wantScript {
					t.Fatalf("Check = %q, %v; want %q", got, err, test.wantScript)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), test.wantReason) {
				t.Fatalf("Check = %q, %v; want an error saying %q", got, err, test.wantReason)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the reason %q is not one line", err)
			}
		})
	}
}
