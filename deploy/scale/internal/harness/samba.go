package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// sambaLockName is the lock file, in os.TempDir(), that every user of the machine's Samba DC
// holds while it runs one (ad-writer's tests use the same file): Samba's ports are fixed.
const sambaLockName = "orgsync-samba-dc.lock"

// SambaDC is a Samba AD domain controller run through the repository's scripts/samba-dc.sh, under
// the machine-wide lock. Samba daemonises, so it is not a Proc: a harness that dies leaves it
// running, and the lock file names its directory for the next holder to stop. Its methods are
// safe for concurrent use.
type SambaDC struct {
	Dir                                       string
	URL, BindDN, PasswordFile, CAFile, BaseDN string
	// Keep leaves a directory StartSambaDC created in place on Close.
	Keep bool

	script     string
	lock       *os.File
	createdDir bool
	mu         sync.Mutex
	restarts   int
}

// StartSambaDC takes the lock (calling waiting once if another user holds it, then waiting until
// ctx ends), stops a DC a dead holder left running, provisions a domain into dir — a new
// temporary directory when dir is "" — unless it is provisioned already, and starts Samba.
func StartSambaDC(ctx context.Context, repoRoot, dir string, waiting func()) (_ *SambaDC, err error) {
	script := filepath.Join(repoRoot, "scripts", "samba-dc.sh")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("the Samba DC script: %w", err)
	}
	lock, err := lockSamba(ctx, waiting)
	if err != nil {
		return nil, err
	}
	dc := &SambaDC{script: script, lock: lock}
	defer func() {
		if err != nil {
			_ = dc.Close()
		}
	}()
	if previous, err := os.ReadFile(lock.Name()); err == nil && strings.TrimSpace(string(previous)) != "" {
		// A holder killed before its cleanup: its DC still holds the ports. A directory in the
		// temporary directory was a throw-away one (ad-writer's tests remove those the same way).
		previousDir := strings.TrimSpace(string(previous))
		cmd := "stop"
		if strings.HasPrefix(previousDir, os.TempDir()) && previousDir != dir {
			cmd = "teardown"
		}
		_ = (&SambaDC{Dir: previousDir, script: script}).run(cmd)
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "orgsync-samba-dc-"); err != nil {
			return nil, err
		}
		dc.createdDir = true
	} else if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
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
	env, err := os.ReadFile(filepath.Join(dir, "env"))
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
		return nil, fmt.Errorf("%s lacks one of LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_BASE_DN", filepath.Join(dir, "env"))
	}
	return dc, nil
}

// lockSamba takes the exclusive lock on the DC, polling so that ctx can end the wait.
func lockSamba(ctx context.Context, waiting func()) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), sambaLockName), os.O_CREATE|os.O_RDWR, 0o600)
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

// Env is ad-writer's LDAP_* configuration for the DC.
func (dc *SambaDC) Env() []string {
	return Env("LDAP_URL", dc.URL, "LDAP_BIND_DN", dc.BindDN, "LDAP_BIND_PASSWORD_FILE", dc.PasswordFile, "LDAP_CA_FILE", dc.CAFile)
}

// Stop stops Samba gracefully, keeping the domain.
func (dc *SambaDC) Stop() error { return dc.run("stop") }

// Start starts the stopped Samba again on the same domain and waits until it serves LDAPS.
func (dc *SambaDC) Start() error {
	if err := dc.run("start"); err != nil {
		return err
	}
	dc.mu.Lock()
	dc.restarts++
	dc.mu.Unlock()
	return nil
}

// Restarts counts the Starts after the first.
func (dc *SambaDC) Restarts() int {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.restarts
}

// Close stops Samba, removes the directory StartSambaDC created (unless Keep) and releases the lock.
func (dc *SambaDC) Close() error {
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

func (dc *SambaDC) run(cmd string) error {
	out, err := exec.Command(dc.script, cmd, dc.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-dc.sh %s %s: %w: %s", cmd, dc.Dir, err, out)
	}
	return nil
}

// dial opens an administrator's connection over LDAPS, verified against the DC's CA.
func (dc *SambaDC) dial() (*goldap.Conn, error) {
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", dc.CAFile)
	}
	u, err := url.Parse(dc.URL)
	if err != nil {
		return nil, fmt.Errorf("LDAP_URL %q: %w", dc.URL, err)
	}
	conn, err := goldap.DialURL(dc.URL, goldap.DialWithTLSConfig(&tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, fmt.Errorf("connecting to the Samba DC: %w", err)
	}
	conn.SetTimeout(time.Minute)
	password, err := os.ReadFile(dc.PasswordFile)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Bind(dc.BindDN, strings.TrimRight(string(password), "\r\n")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("binding to the Samba DC as %s: %w", dc.BindDN, err)
	}
	return conn, nil
}

// PrepareLayout gives the run an empty managed tree: it removes layout.Root with everything below
// it (left by an earlier run on a reused domain) and creates the layout's OUs.
func (dc *SambaDC) PrepareLayout(layout ADLayout) error {
	conn, err := dc.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := conn.SearchWithPaging(goldap.NewSearchRequest(layout.Root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), 500)
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return fmt.Errorf("reading %s: %w", layout.Root, err)
	}
	if res != nil {
		// Children before their parents: the deepest DNs first.
		dns := make([]string, 0, len(res.Entries))
		for _, e := range res.Entries {
			dns = append(dns, e.DN)
		}
		depth := func(dn string) int {
			parsed, err := goldap.ParseDN(dn)
			if err != nil {
				return 0
			}
			return len(parsed.RDNs)
		}
		sort.SliceStable(dns, func(i, j int) bool { return depth(dns[i]) > depth(dns[j]) })
		for _, dn := range dns {
			if err := conn.Del(goldap.NewDelRequest(dn, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				return fmt.Errorf("removing %s: %w", dn, err)
			}
		}
	}
	for _, ou := range layout.OUs() {
		add := goldap.NewAddRequest(ou, nil)
		add.Attribute("objectClass", []string{"top", "organizationalUnit"})
		if err := conn.Add(add); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("creating %s: %w", ou, err)
		}
	}
	return nil
}

// Snapshot reads every user and group below layout.Root, with every member of each group (range
// retrieval: AD hands out at most MaxValRange values of an attribute per read).
func (dc *SambaDC) Snapshot(layout ADLayout) (ADSnapshot, error) {
	var snap ADSnapshot
	conn, err := dc.dial()
	if err != nil {
		return snap, err
	}
	defer conn.Close()
	res, err := conn.SearchWithPaging(goldap.NewSearchRequest(layout.Root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		// msDS-KeyVersionNumber is constructed: only returned when asked for by name.
		"(|(objectClass=user)(objectClass=group))", []string{"*", "msDS-KeyVersionNumber"}, nil), 500)
	if err != nil {
		return snap, fmt.Errorf("reading %s: %w", layout.Root, err)
	}
	for _, e := range res.Entries {
		entry := ADEntry{DN: e.DN, Attrs: map[string][]string{}}
		next := -1 // the first member value still to read, when the answer was ranged
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if name == "member" || strings.HasPrefix(name, "member;range=") {
				entry.Members = append(entry.Members, a.Values...)
				if end, ok := rangeEnd(name); ok {
					next = end + 1
				}
				continue
			}
			entry.Attrs[name] = a.Values
		}
		for next >= 0 {
			if entry.Members, next, err = readMemberRange(conn, e.DN, entry.Members, next); err != nil {
				return snap, err
			}
		}
		classes := map[string]bool{}
		for _, class := range entry.Attrs["objectclass"] {
			classes[strings.ToLower(class)] = true
		}
		switch {
		case classes["group"]:
			snap.Groups = append(snap.Groups, entry)
		case classes["user"] && !classes["computer"]:
			snap.Users = append(snap.Users, entry)
		}
	}
	return snap, nil
}

// rangeEnd returns N of an attribute named "member;range=M-N"; false for the last range ("M-*").
func rangeEnd(name string) (int, bool) {
	_, bounds, ok := strings.Cut(name, ";range=")
	if !ok {
		return 0, false
	}
	_, end, _ := strings.Cut(bounds, "-")
	n, err := strconv.Atoi(end)
	return n, err == nil
}

// readMemberRange reads the group's member values from start on, appends them to members, and
// returns where the next range starts (-1 after the last).
func readMemberRange(conn *goldap.Conn, groupDN string, members []string, start int) ([]string, int, error) {
	res, err := conn.Search(goldap.NewSearchRequest(groupDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{fmt.Sprintf("member;range=%d-*", start)}, nil))
	if err != nil {
		return members, -1, fmt.Errorf("reading the members of %s: %w", groupDN, err)
	}
	next := -1
	for _, e := range res.Entries {
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if !strings.HasPrefix(name, "member") {
				continue
			}
			members = append(members, a.Values...)
			if end, ok := rangeEnd(name); ok {
				next = end + 1
			}
		}
	}
	return members, next, nil
}
