package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/natsembed"
)

// serveNATSEnv, when set in a harness command's environment, makes it serve JetStream instead
// (the value is "PORT:STORE_DIR"): the harness re-executes its own binary to run nats-server
// v2.15 as a separate process, whatever nats-server the machine has (Debian 12 ships v2.9).
const serveNATSEnv = "ORGSYNC_SCALE_SERVE_NATS"

// MaybeServeNATS serves JetStream and exits when the process was started as the harness's NATS
// server; otherwise it returns at once. Call it first in main.
func MaybeServeNATS() {
	spec := os.Getenv(serveNATSEnv)
	if spec == "" {
		return
	}
	var port int
	var dir string
	if _, err := fmt.Sscanf(spec, "%d:", &port); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", serveNATSEnv, spec, err)
		os.Exit(2)
	}
	dir = spec[len(strconv.Itoa(port))+1:]
	srv, err := natsembed.Start(natsembed.Options{Port: port, StoreDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "JetStream listening on %s, store %s\n", srv.ClientURL(), dir)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	srv.Shutdown()
	srv.WaitForShutdown()
	os.Exit(0)
}

// NATSProc returns a process running JetStream (file storage in dir/jetstream) on port, served by
// this very binary (see MaybeServeNATS).
func NATSProc(dir string, port int) (*Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &Proc{
		Name: "nats", Path: self,
		Env:     []string{fmt.Sprintf("%s=%d:%s", serveNATSEnv, port, filepath.Join(dir, "jetstream"))},
		LogPath: filepath.Join(dir, "nats.log"),
	}, nil
}

// WaitJetStream waits until JetStream at url answers.
func WaitJetStream(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err == nil {
			js, _ := jetstream.New(nc)
			_, err = js.AccountInfo(ctx)
			nc.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream at %s not ready: %w", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RedisProc returns a redis-server listening only on a Unix socket in dir, persistence off, and
// its REDIS_URL.
func RedisProc(dir string) (*Proc, string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server is not installed (run scripts/install-deps.sh): %w", err)
	}
	socket := filepath.Join(dir, "redis.sock")
	return &Proc{
		Name: "redis", Path: path,
		Args:    []string{"--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", dir},
		LogPath: filepath.Join(dir, "redis.log"),
	}, "unix://" + socket, nil
}

// WaitFile waits until path exists.
func WaitFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
