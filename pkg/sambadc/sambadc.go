// Package sambadc starts a throw-away Samba AD domain controller on loopback through the
// repository's scripts/samba-dc.sh: for ad-writer's tests, the local stack (`make run`) and the
// chaos run (deploy/scale). It is for tests and development, not for production.
//
// Samba listens on the fixed ports 389, 636 and 3268, so there is one DC per machine at a time.
// Every user holds the exclusive lock file $TMPDIR/orgsync-samba-dc.lock (LockName) for as long
// as its DC runs, and writes the DC's directory into it, so that the next holder can stop a DC
// whose owner was killed before its cleanup. scripts/samba-dc.sh writes the directory's env file
// (LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_BASE_DN), which Start reads.
package sambadc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LockName is the lock file, in os.TempDir(), that every user of the machine's Samba DC holds
// while it runs one.
const LockName = "orgsync-samba-dc.lock"

// tempDirPattern names the directories Start creates; only those are removed when a holder died.
const tempDirPattern = "orgsync-samba-dc-"

// Options say which script runs the DC, where its domain lives, and what to do while waiting.
type Options struct {
	// Script is scripts/samba-dc.sh (default: FindScript from the working directory).
	Script string
	// Dir holds the domain. "" provisions a new temporary directory, which Close removes; a
	// directory named here is provisioned unless it already is, and Close only stops Samba.
	Dir string
	// Waiting, when set, is called once, with the lock file's path, when someone else holds the
	// DC; Start then waits until they release it or its ctx ends.
	Waiting func(lockFile string)
}

// DC is a running Samba domain controller and its administrator's credentials. Its methods are
// safe for concurrent use, except Close, which ends its use.
type DC struct {
	// Dir holds the domain, its CA and the administrator's password.
	Dir string
	// URL is the LDAPS URL, BaseDN the domain's DN.
	URL, BaseDN string
	// BindDN is the administrator's DN, PasswordFile holds its password, CAFile the PEM CA that
	// signed the DC's certificate.
	BindDN, PasswordFile, CAFile string
	// Keep leaves a directory Start created in place on Close (Samba is stopped).
	Keep bool

	script     string
	lock       *os.File
	createdDir bool

	mu       sync.Mutex
	restarts int
}

// Start takes the machine-wide lock (see Options.Waiting), stops a DC whose holder died without
// releasing it, provisions a domain into opts.Dir unless it is provisioned already (about 10 s
// on two cores), starts Samba and waits until it serves LDAPS. The script itself is not
// interrupted by ctx: it gives up within about 30 s on its own. Close releases the DC.
func Start(ctx context.Context, opts Options) (_ *DC, err error) {
	script := opts.Script
	if script == "" {
		if script, err = FindScript(""); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("the Samba DC script: %w", err)
	}
	dir := opts.Dir
	if dir != "" {
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, err
		}
	}
	lock, err := acquire(ctx, opts.Waiting)
	if err != nil {
		return nil, err
	}
	dc := &DC{script: script, lock: lock}
	defer func() {
		if err != nil {
			err = errors.Join(err, dc.Close())
		}
	}()
	if previous, err := os.ReadFile(lock.Name()); err == nil && strings.TrimSpace(string(previous)) != "" {
		// A holder killed before its cleanup: its DC still holds the ports. A directory Start
		// created was a throw-away one; another (the chaos run's -samba-dir) is only stopped.
		previousDir := strings.TrimSpace(string(previous))
		cmd := "stop"
		if throwAway(previousDir) && previousDir != dir {
			cmd = "teardown"
		}
		_ = (&DC{Dir: previousDir, script: script}).run(cmd)
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", tempDirPattern); err != nil {
			return nil, err
		}
		dc.createdDir = true
	}
	dc.Dir = dir
	if err := lock.Truncate(0); err != nil {
		return nil, fmt.Errorf("recording the Samba DC in its lock file: %w", err)
	}
	if _, err := lock.WriteAt([]byte(dir), 0); err != nil {
		return nil, fmt.Errorf("recording the Samba DC in its lock file: %w", err)
	}
	if err := dc.run("start"); err != nil {
		return nil, err
	}
	if err := dc.readEnv(); err != nil {
		return nil, err
	}
	return dc, nil
}

// throwAway reports whether dir is one Start created in the temporary directory.
func throwAway(dir string) bool {
	return filepath.Dir(dir) == filepath.Clean(os.TempDir()) && strings.HasPrefix(filepath.Base(dir), tempDirPattern)
}

// readEnv reads the connection settings scripts/samba-dc.sh wrote into the directory's env file.
func (dc *DC) readEnv() error {
	path := filepath.Join(dc.Dir, "env")
	env, err := os.ReadFile(path)
	if err != nil {
		return err
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
		return fmt.Errorf("%s lacks one of LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_BASE_DN", path)
	}
	return nil
}

// Password returns the administrator's password.
func (dc *DC) Password() (string, error) {
	secret, err := os.ReadFile(dc.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("the Samba administrator's password: %w", err)
	}
	return strings.TrimRight(string(secret), "\r\n"), nil
}

// Stop stops Samba gracefully, keeping the domain; Resume starts it again.
func (dc *DC) Stop() error { return dc.run("stop") }

// Resume starts the stopped Samba again on the same domain and waits until it serves LDAPS.
func (dc *DC) Resume() error {
	if err := dc.run("start"); err != nil {
		return err
	}
	dc.mu.Lock()
	dc.restarts++
	dc.mu.Unlock()
	return nil
}

// Restarts counts the Resumes that succeeded.
func (dc *DC) Restarts() int {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.restarts
}

// Close stops Samba, removes the directory Start created (unless Keep) and releases the lock.
// When Samba could not be stopped, the lock file keeps naming the directory, for the next holder.
func (dc *DC) Close() error {
	var err error
	if dc.Dir != "" {
		cmd := "stop"
		if dc.createdDir && !dc.Keep {
			cmd = "teardown"
		}
		err = dc.run(cmd)
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
func acquire(ctx context.Context, waiting func(string)) (*os.File, error) {
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
			waiting(lock.Name())
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
	return FindScript(host.Dir)
}

// FindScript walks up from dir (default the working directory) to scripts/samba-dc.sh.
func FindScript(dir string) (string, error) {
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
