package sambadc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestLifecycle runs the real thing: a DC in a directory of the caller's, the lock held against a
// second user, a restart, a holder that dies without releasing the DC, a throw-away DC started
// after it, and the kept domain started again without provisioning.
func TestLifecycle(t *testing.T) {
	script, err := Check(Host{})
	if err != nil {
		t.Fatalf("the Samba DC tests need Samba: %v", err)
	}
	kept := filepath.Join(t.TempDir(), "domain")
	dc, err := Start(t.Context(), Options{Script: script, Dir: kept})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.Close() })
	if dc.Dir != kept || dc.BaseDN != "DC=corp,DC=example,DC=test" || !strings.HasPrefix(dc.URL, "ldaps://") {
		t.Errorf("DC in %s at %s, base %s; want %s, ldaps://, DC=corp,DC=example,DC=test", dc.Dir, dc.URL, dc.BaseDN, kept)
	}
	if password, err := dc.Password(); err != nil || password == "" || strings.ContainsAny(password, "\r\n") {
		t.Errorf("Password = %q, %v", password, err)
	}
	checkServes(t, dc, true)

	t.Run("a second user waits for the lock until its context ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		var told []string
		second, err := Start(ctx, Options{Script: script, Waiting: func(lockFile string) { told = append(told, lockFile) }})
		if err == nil {
			second.Close()
			t.Fatal("a second DC started while the first held the lock")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start = %v, want the context's end", err)
		}
		if want := []string{filepath.Join(os.TempDir(), LockName)}; len(told) != 1 || told[0] != want[0] {
			t.Errorf("Waiting called with %q, want once with %q", told, want)
		}
	})

	t.Run("stopped and resumed on the same domain", func(t *testing.T) {
		if err := dc.Stop(); err != nil {
			t.Fatal(err)
		}
		checkServes(t, dc, false)
		if err := dc.Resume(); err != nil {
			t.Fatal(err)
		}
		checkServes(t, dc, true)
		if got := dc.Restarts(); got != 1 {
			t.Errorf("Restarts = %d, want 1", got)
		}
	})

	t.Run("the next holder stops a dead holder's DC and keeps its directory", func(t *testing.T) {
		dc.lock.Close() // the holder dies: Samba keeps running, the lock file names its directory
		throwaway, err := Start(t.Context(), Options{Script: script})
		if err != nil {
			t.Fatal(err)
		}
		if !throwAway(throwaway.Dir) {
			t.Errorf("throw-away DC in %s, want a new directory in %s", throwaway.Dir, os.TempDir())
		}
		if _, err := os.Stat(filepath.Join(kept, "provisioned")); err != nil {
			t.Errorf("the dead holder's own directory: %v", err)
		}
		checkServes(t, throwaway, true)
		if err := throwaway.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(throwaway.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("throw-away directory after Close: %v, want it removed", err)
		}
		if held, err := os.ReadFile(filepath.Join(os.TempDir(), LockName)); err != nil || len(held) != 0 {
			t.Errorf("lock file after Close = %q, %v; want it empty", held, err)
		}
	})

	t.Run("a kept domain starts again and stays after Close", func(t *testing.T) {
		again, err := Start(t.Context(), Options{Script: script, Dir: kept})
		if err != nil {
			t.Fatal(err)
		}
		checkServes(t, again, true)
		if err := again.Close(); err != nil {
			t.Fatal(err)
		}
		checkServes(t, again, false)
		if _, err := os.Stat(filepath.Join(kept, "provisioned")); err != nil {
			t.Errorf("kept directory after Close: %v", err)
		}
	})
}

// checkServes checks that the DC answers LDAPS with a certificate its CAFile verifies, or that
// nothing listens there.
func checkServes(t *testing.T, dc *DC, want bool) {
	t.Helper()
	u, err := url.Parse(dc.URL)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", dc.CAFile)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host,
		&tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
	}
	if serves := err == nil; serves != want {
		t.Errorf("LDAPS at %s serves = %v (%v), want %v", dc.URL, serves, err, want)
	}
}
