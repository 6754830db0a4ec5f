// Package streamtest starts an embedded JetStream server for tests and connects to it: the one
// setup every orgsync test that needs JetStream shares. It is for tests only.
package streamtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
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

// HREvents returns every event stream HR holds, in stream order.
func HREvents(tb testing.TB, js jetstream.JetStream) []*orgsyncv1.HREvent {
	tb.Helper()
	s, err := js.Stream(tb.Context(), stream.HR)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	var events []*orgsyncv1.HREvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(tb.Context(), seq)
		if err != nil {
			tb.Fatal(err)
		}
		var event orgsyncv1.HREvent
		if err := proto.Unmarshal(raw.Data, &event); err != nil {
			tb.Fatal(err)
		}
		events = append(events, &event)
	}
	return events
}

// AuditRecords returns every record stream AUDIT holds on subjects that start with
// subjectPrefix (e.g. "audit.entra.user.E1"), in stream order.
func AuditRecords(tb testing.TB, js jetstream.JetStream, subjectPrefix string) []*orgsyncv1.WriterResult {
	tb.Helper()
	s, err := js.Stream(tb.Context(), stream.Audit)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	var records []*orgsyncv1.WriterResult
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(tb.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if !strings.HasPrefix(raw.Subject, subjectPrefix) {
			continue
		}
		var record orgsyncv1.WriterResult
		if err := proto.Unmarshal(raw.Data, &record); err != nil {
			tb.Fatal(err)
		}
		records = append(records, &record)
	}
	return records
}
