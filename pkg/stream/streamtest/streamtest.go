// Package streamtest starts an embedded JetStream server for tests and connects to it: the one
// setup every orgsync test that needs JetStream shares. It is for tests only.
package streamtest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/stream"
)

// Server is an embedded JetStream server on a free loopback port (its ClientURL for services
// under test) and a client connected to it. Both stop when the test ends.
type Server struct {
	*server.Server
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Start starts a server, connects to it and creates orgsync's streams with their default
// configuration (stream.DefaultConfig).
func Start(tb testing.TB) Server {
	tb.Helper()
	srv := StartBare(tb)
	if err := stream.EnsureStreams(tb.Context(), srv.JS, stream.DefaultConfig()); err != nil {
		tb.Fatal(err)
	}
	return srv
}

// StartBare starts a server and connects to it, without creating any stream: for a test of
// what a service creates itself.
func StartBare(tb testing.TB) Server {
	tb.Helper()
	srv := natsembed.StartForTest(tb)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return Server{Server: srv, Conn: nc, JS: js}
}
