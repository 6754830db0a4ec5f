// Package samba starts the Samba AD domain controller ad-writer's tests run against, through
// scripts/samba-dc.sh. Samba listens on fixed ports (389, 636, 3268), so a DC is held under an
// exclusive lock file for as long as one test binary uses it: test packages (and concurrent runs)
// take turns, each with a freshly provisioned domain. Not for use outside tests and benchmarks.
package samba

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// DC is a running Samba domain controller.
type DC struct {
	Dir          string
	URL          string
	BindDN       string
	PasswordFile string
	CAFile       string
	BaseDN       string
	script       string
	lock         *os.File
}

// Start takes the machine-wide lock, provisions a domain into a new temporary directory and
// starts Samba. Close stops it, removes the directory and releases the lock.
func Start() (*DC, error) {
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "orgsync-samba-dc.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("locking the Samba DC: %w", err)
	}
	// A test binary killed before its cleanup leaves its DC running on the fixed ports: the lock
	// file names it, so the next holder tears it down first.
	if previous, err := os.ReadFile(lock.Name()); err == nil && strings.HasPrefix(string(previous), os.TempDir()) {
		_ = (&DC{Dir: strings.TrimSpace(string(previous)), script: script}).run("teardown")
	}
	dir, err := os.MkdirTemp("", "orgsync-samba-dc-")
	if err != nil {
		lock.Close()
		return nil, err
	}
	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt([]byte(dir), 0)
	}
	dc := &DC{Dir: dir, script: script, lock: lock}
	if err := dc.run("start"); err != nil {
		dc.Close()
		return nil, err
	}
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		dc.Close()
		return nil, err
	}
	for line := range strings.Lines(string(env)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch name {
		case "LDAP_URL":
			dc.URL = value
		case "LDAP_BIND_DN":
			dc.BindDN = value
		case "LDAP_BIND_PASSWORD_FILE":
			dc.PasswordFile = value
		case "LDAP_CA_FILE":
			dc.CAFile = value
		case "LDAP_BASE_DN":
			dc.BaseDN = value
		}
	}
	return dc, nil
}

// Password returns the administrator's password.
func (dc *DC) Password() string {
	b, _ := os.ReadFile(dc.PasswordFile)
	return string(b)
}

// Stop stops Samba, keeping the domain (for restart tests).
func (dc *DC) Stop() error { return dc.run("stop") }

// Resume starts the stopped Samba again.
func (dc *DC) Resume() error { return dc.run("start") }

// Close tears the DC down and releases the lock.
func (dc *DC) Close() {
	_ = dc.run("teardown")
	_ = dc.lock.Truncate(0)
	_ = dc.lock.Close()
}

func (dc *DC) run(cmd string) error {
	out, err := exec.Command(dc.script, cmd, dc.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-dc.sh %s: %w: %s", cmd, err, out)
	}
	return nil
}

// findScript walks up from the working directory to the repository's scripts/samba-dc.sh.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "scripts", "samba-dc.sh")
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/samba-dc.sh not found above the working directory")
		}
		dir = parent
	}
}
