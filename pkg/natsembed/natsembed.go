// Package natsembed runs a NATS server with JetStream inside the process, for tests and for the
// local stack (`make run`). Production uses a NATS cluster installed on its own.
package natsembed

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options say where the embedded server listens and stores.
type Options struct {
	// Host defaults to 127.0.0.1.
	Host string
	// Port 0 or -1 picks a free port.
	Port int
	// StoreDir is the JetStream file store directory.
	StoreDir string
	// Configure, when set, changes the server options last (users, TLS, ...), for tests of
	// authentication and transport.
	Configure func(*server.Options)
}

// Start starts a JetStream-enabled server and waits until it accepts connections. The caller
// shuts it down (Shutdown, then WaitForShutdown).
func Start(opts Options) (*server.Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	serverOpts := &server.Options{
		Host:      opts.Host,
		Port:      opts.Port,
		JetStream: true,
		StoreDir:  opts.StoreDir,
		NoLog:     true,
		NoSigs:    true,
	}
	if opts.Configure != nil {
		opts.Configure(serverOpts)
	}
	srv, err := server.NewServer(serverOpts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s:%d not ready within 10s", opts.Host, opts.Port)
	}
	return srv, nil
}

// StartForTest starts a server on a free loopback port with its store in a test directory, and
// stops it when the test ends. configure, when given, changes the server options last.
func StartForTest(tb testing.TB, configure ...func(*server.Options)) *server.Server {
	tb.Helper()
	srv, err := Start(Options{StoreDir: tb.TempDir(), Configure: func(o *server.Options) {
		for _, c := range configure {
			c(o)
		}
	}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// StartFromConfigFile starts a server configured by a nats-server configuration file — its
// accounts, users and permissions — but listening on a free loopback port with its JetStream
// store in storeDir, whatever the file says about them, and waits until it accepts connections.
// Variables the file references ($NAME) come from the environment, as with nats-server itself.
// The caller shuts it down.
func StartFromConfigFile(path, storeDir string) (*server.Server, error) {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("NATS configuration %s: %w", path, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPPort, opts.HTTPSPort = 0, 0
	opts.Cluster.Port, opts.LeafNode.Port, opts.Gateway.Port = 0, 0, 0
	opts.JetStream, opts.StoreDir = true, storeDir
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("NATS from %s: %w", path, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("NATS from %s not ready within 10s", path)
	}
	return srv, nil
}

// StartFromConfigFileForTest is StartFromConfigFile with the store in a test directory, stopped
// when the test ends.
func StartFromConfigFileForTest(tb testing.TB, path string) *server.Server {
	tb.Helper()
	srv, err := StartFromConfigFile(path, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}
