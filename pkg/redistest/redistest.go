// Package redistest starts a real redis-server for a test: a private process listening on a Unix
// socket in the test's temporary directory, with persistence off, stopped when the test ends.
// redis-server comes from Debian's package, which scripts/install-deps.sh installs (make test runs
// it first).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start runs a redis-server for tb and returns its URL, e.g. "unix:///tmp/…/redis.sock", in the
// form go-redis's ParseURL (and REDIS_URL) accept.
func Start(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed (run scripts/install-deps.sh): %v", err)
	}
	dir := tb.TempDir()
	socket := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(path,
		"--port", "0", "--unixsocket", socket, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting redis-server: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(socket); err == nil {
			return "unix://" + socket
		} else if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s not ready within 10s: %v", socket, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(socket string) error {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(reply) != "+PONG" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}
