// Package sambadc starts the Samba AD domain controller of the local stack (`make run`) through
// the repository's scripts/samba-dc.sh, which provisions a throw-away domain on loopback.
//
// Samba listens on the fixed ports 389, 636 and 3268, so there is one DC per machine at a time:
// like ad-writer's tests and the chaos run, a DC is held under the exclusive lock file
// $TMPDIR/orgsync-samba-dc.lock for as long as it runs, and the lock file names the DC's
// directory so that the next holder can stop a DC whose owner was killed. Not for production.
package sambadc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockName is the lock file, in os.TempDir(), that every user of the machine's Samba DC holds
// while it runs one: ad-writer's tests (services/ad-writer/internal/samba) and the chaos run
// (deploy/scale/internal/harness) use the same name.
const LockName = "orgsync-samba-dc.lock"

// Host is what Check looks at: where the Samba programs are and who runs them. Zero fields are
// the real machine's.
type Host struct {
	// LookPath finds a program (default exec.LookPath).
	LookPath func(name string) (string, error)
	// Geteuid returns the effective user id (default os.Geteuid).
	Geteuid func() int
	// Dir is where the search for scripts/samba-dc.sh starts (default the working directory).
	Dir string
}

// Check returns the path of scripts/samba-dc.sh when a DC can be started here, or an error that
// says why not in words fit for one line of output.
func Check(host Host) (string, error) {
	if host.LookPath == nil {
		host.LookPath = exec.LookPath
	}
	if host.Geteuid == nil {
		host.Geteuid = os.Geteuid
	}
	for _, program := range []string{"samba", "samba-tool"} {
		if _, err := host.LookPath(program); err == nil {
			continue
		}
		// Debian installs samba in /usr/sbin, which a non-root PATH often lacks.
		if _, err := host.LookPath(filepath.Join("/usr/sbin", program)); err != nil {
			return "", fmt.Errorf("Samba is not installed (no %s; scripts/install-deps.sh installs the Debian package samba)", program)
		}
	}
	if uid := host.Geteuid(); uid != 0 {
		return "", fmt.Errorf("a Samba AD DC is provisioned and run as root (it sets file ownership and ACLs, and listens on ports 389 and 636), and this runs as uid %d", uid)
	}
	return findScript(host.Dir)
}

// DC is a running Samba domain controller and its administrator's credentials.
type DC struct {
	// Dir holds the domain, its CA and the administrator's password; Close removes it.
	Dir string
	// URL is the LDAPS URL, BaseDN the domain's DN.
	URL, BaseDN string
	// BindDN is the administrator's DN, PasswordFile holds its password, CAFile the PEM CA that
	// signed the DC's certificate.
	BindDN, PasswordFile, CAFile string

	script string
	lock   *os.File
}

// Start takes the machine-wide lock — calling waiting once when someone else holds it, then
// waiting until they release it or ctx ends —, stops a DC whose holder died without releasing
// it, provisions a new domain into a temporary directory and starts Samba (about 10 s on two
// cores). The script itself is not interrupted by ctx: it gives up within about 30 s on its own.
// Close stops Samba, removes the directory and releases the lock.
func Start(ctx context.Context, script string, waiting func()) (_ *DC, err error) {
	lock, err := acquire(ctx, waiting)
	if err != nil {
		return nil, err
	}
	dc := &DC{script: script, lock: lock}
	defer func() {
		if err != nil {
			dc.Close()
		}
	}()
	if previous, err := os.ReadFile(lock.Name()); err == nil && strings.TrimSpace(string(previous)) != "" {
		// A holder killed before its cleanup: its DC still holds the ports. One in the temporary
		// directory was a throw-away one; another (the chaos run's -samba-dir) is only stopped.
		previousDir := strings.TrimSpace(string(previous))
		cmd := "stop"
		if strings.HasPrefix(previousDir, os.TempDir()) {
			cmd = "teardown"
		}
		_ = (&DC{Dir: previousDir, script: script}).run(cmd)
	}
	if dc.Dir, err = os.MkdirTemp("", "orgsync-samba-dc-"); err != nil {
		return nil, err
	}
	if err := lock.Truncate(0); err != nil {
		return nil, fmt.Errorf("recording the Samba DC in its lock file: %w", err)
	}
	if _, err := lock.WriteAt([]byte(dc.Dir), 0); err != nil {
		return nil, fmt.Errorf("recording the Samba DC in its lock file: %w", err)
	}
	if err := dc.run("start"); err != nil {
		return nil, err
	}
	env, err := os.ReadFile(filepath.Join(dc.Dir, "env"))
	if err != nil {
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
	if dc.URL == "" || dc.BindDN == "" || dc.PasswordFile == "" || dc.CAFile == "" || dc.BaseDN == "" {
		return nil, fmt.Errorf("%s lacks one of LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_BASE_DN", filepath.Join(dc.Dir, "env"))
	}
	return dc, nil
}

// Password returns the administrator's password.
func (dc *DC) Password() (string, error) {
	secret, err := os.ReadFile(dc.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("the Samba administrator's password: %w", err)
	}
	return strings.TrimRight(string(secret), "\r\n"), nil
}

// Close stops Samba, removes its directory and releases the lock.
func (dc *DC) Close() error {
	var err error
	if dc.Dir != "" {
		err = dc.run("teardown")
	}
	if err == nil {
		_ = dc.lock.Truncate(0)
	}
	return errors.Join(err, dc.lock.Close())
}

func (dc *DC) run(cmd string) error {
	out, err := exec.Command(dc.script, cmd, dc.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-dc.sh %s %s: %w: %s", cmd, dc.Dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// acquire takes the exclusive lock, polling so that ctx can end the wait.
func acquire(ctx context.Context, waiting func()) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), LockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return lock, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			lock.Close()
			return nil, fmt.Errorf("locking the Samba DC (%s): %w", lock.Name(), err)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			lock.Close()
			return nil, fmt.Errorf("waiting for the Samba DC lock %s: %w", lock.Name(), ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// findScript walks up from dir (default the working directory) to scripts/samba-dc.sh.
func findScript(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	for {
		candidate := filepath.Join(dir, "scripts", "samba-dc.sh")
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/samba-dc.sh is not in the working directory or above it: run from the repository")
		}
		dir = parent
	}
}
