// Package harness runs orgsync's services as separate processes on one machine for the chaos run
// and the benchmarks: it builds the binaries, starts a JetStream server and a redis-server of its
// own on free loopback ports, starts, kills (SIGKILL to the process group) and restarts services,
// waits for their /readyz, and sends signed HR webhooks. It is internal to deploy/scale.
//
// Every process it starts runs in its own process group with a parent-death signal, and Close
// stops them all; nothing listens beyond 127.0.0.1.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build builds the service binaries of repoRoot into dir and returns their paths by name.
func Build(ctx context.Context, repoRoot, dir string, services ...string) (map[string]string, error) {
	args := []string{"build", "-o", dir + "/"}
	for _, s := range services {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	paths := map[string]string{}
	for _, s := range services {
		paths[s] = filepath.Join(dir, s)
	}
	return paths, nil
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a service process that can be killed and started again with the same command. Its
// methods are safe for concurrent use.
type Proc struct {
	Name string
	Path string
	Args []string
	Env  []string
	// ReadyURL, when set, is polled by WaitReady (a service's /readyz).
	ReadyURL string
	// LogPath receives the process's stdout and stderr, appended across restarts.
	LogPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	starts   int
	kills    int
	crashes  int
	stopping bool
}

// Start starts the process (again). It does not wait for readiness.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	log, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	p.starts++
	go func() {
		_ = cmd.Wait()
		log.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			if !p.stopping {
				p.crashes++
			}
			p.cmd = nil
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Running reports whether the process is running.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Kill sends sig to the process group and waits (up to 10 s) until the process has exited.
// SIGKILL is kill -9; SIGTERM asks for a graceful shutdown.
func (p *Proc) Kill(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return nil
	}
	p.stopping = true
	if sig == syscall.SIGKILL {
		p.kills++
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.stopping = false
		p.mu.Unlock()
	}()
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s did not stop within 10s of %v; killed", p.Name, sig)
	}
}

// Counts returns how often the process was started, killed with SIGKILL and exited by itself.
func (p *Proc) Counts() (starts, kills, crashes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.kills, p.crashes
}

// WaitReady polls ReadyURL until it answers 200, the process exits, or ctx ends.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if !p.Running() {
			return fmt.Errorf("%s is not running (see %s)", p.Name, p.LogPath)
		}
		if p.ReadyURL == "" {
			return nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.ReadyURL, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w (see %s)", p.Name, p.ReadyURL, ctx.Err(), p.LogPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Group is a set of processes stopped together.
type Group struct {
	mu    sync.Mutex
	procs []*Proc
}

// Add registers p to be stopped by Close.
func (g *Group) Add(p *Proc) *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.procs = append(g.procs, p)
	return p
}

// Close stops every process, in reverse order of registration, gracefully and then by SIGKILL.
func (g *Group) Close() error {
	g.mu.Lock()
	procs := append([]*Proc(nil), g.procs...)
	g.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Kill(syscall.SIGTERM); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RepoRoot finds the repository root: the nearest directory above dir holding go.work.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the current directory: run from the orgsync repository")
		}
		dir = parent
	}
}

// Env formats environment variables.
func Env(pairs ...string) []string {
	var env []string
	for i := 0; i+1 < len(pairs); i += 2 {
		env = append(env, pairs[i]+"="+pairs[i+1])
	}
	return env
}

// TailLog returns the last lines of a log file, for error messages.
func TailLog(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
