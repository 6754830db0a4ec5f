package service

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// lockedBuffer collects a replica's log for the test to read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLoggingReplica starts one entra-writer replica whose debug log goes to logs, and returns
// the function that stops it.
func (p pipeline) startLoggingReplica(tb testing.TB, logs *lockedBuffer) func() {
	tb.Helper()
	cfg := Config{
		NATSURL: p.natsURL, Streams: stream.DefaultConfig(),
		Server:       server.Config{Name: Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		GraphBaseURL: p.graphURL, GraphAuth: "none",
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			tb.Errorf("entra-writer: %v", err)
		}
	})
	stop := func() { cancel(); wg.Wait() }
	tb.Cleanup(stop)
	return stop
}

// TestTerminationRevokesSessionsInTheSameConvergence runs a leaver through entra-writer and
// msgraph-sdk-go against the emulator: the revision that disables the account also revokes its
// sign-in sessions — one result, one audit record, no session issued before still valid — and a
// restarted writer applying later revisions of the leaver does not revoke again.
func TestTerminationRevokesSessionsInTheSameConvergence(t *testing.T) {
	p := newPipeline(t, emulator.Faults{})
	logs := &lockedBuffer{}
	stop := p.startLoggingReplica(t, logs)

	hire := desiredUser("E1", "jane.doe@corp.example.test", "", 1)
	p.publish(t, []*orgsyncv1.DesiredObject{hire})
	p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool { return r["entra.user.E1"].GetRevision() == 1 })
	account, ok := p.emulator.UserByEmployeeID("E1")
	if !ok {
		t.Fatal("no account for E1")
	}
	sessionIssued := time.Now()
	if !p.emulator.SignInSessionValid(account.ID(), sessionIssued) {
		t.Fatal("the new hire's session is not valid before the termination")
	}

	leaver := func(revision uint64, jobTitle string, accessEnded time.Time) *orgsyncv1.DesiredObject {
		obj := desiredUser("E1", "jane.doe@corp.example.test", "", revision)
		obj.GetUser().AccountEnabled, obj.GetUser().JobTitle = false, jobTitle
		obj.GetUser().AccessRevokedAt = timestamppb.New(accessEnded)
		obj.Cause = &orgsyncv1.Cause{Reason: "termination", HrEventId: "ev-terminate-E1"}
		return obj
	}
	accessEnded := time.Now()
	p.publish(t, []*orgsyncv1.DesiredObject{leaver(2, "", accessEnded)})
	results := p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool { return r["entra.user.E1"].GetRevision() == 2 })
	if got, want := results["entra.user.E1"].GetOperations(), []string{"user.update", writer.OpRevokeSessions}; !slices.Equal(got, want) {
		t.Errorf("the termination's result: operations %v, want %v (the disable and the revocation in one convergence)", got, want)
	}
	validFrom, _ := p.emulator.SignInSessionsValidFrom(account.ID())
	if !validFrom.After(sessionIssued) {
		t.Errorf("signInSessionsValidFromDateTime %v is not after the session issued at %v", validFrom, sessionIssued)
	}
	if full, _ := p.emulator.User(account.ID()); full["accountEnabled"] != false {
		t.Errorf("accountEnabled = %v, want false", full["accountEnabled"])
	}

	audit := streamtest.AuditRecords(t, p.js, "audit.entra.user.E1")
	var revocations []*orgsyncv1.WriterResult
	for _, record := range audit {
		if slices.Contains(record.GetOperations(), writer.OpRevokeSessions) {
			revocations = append(revocations, record)
		}
	}
	if len(revocations) != 1 {
		t.Fatalf("%d audit records of a revocation, want 1: %v", len(revocations), audit)
	}
	if record := revocations[0]; record.GetRevision() != 2 || record.GetCause().GetHrEventId() != "ev-terminate-E1" || record.GetObjectId() != account.ID() {
		t.Errorf("the revocation's audit record names revision %d, HR event %q, object %q; want 2, ev-terminate-E1, %s",
			record.GetRevision(), record.GetCause().GetHrEventId(), record.GetObjectId(), account.ID())
	}

	// A restart, and later revisions of the leaver (HR corrects the title): no second revocation.
	stop()
	p.startLoggingReplica(t, logs)
	p.publish(t, []*orgsyncv1.DesiredObject{leaver(3, "Former engineer", accessEnded)})
	results = p.resultsUntil(t, 30*time.Second, func(r map[string]*orgsyncv1.WriterResult) bool { return r["entra.user.E1"].GetRevision() == 3 })
	if got := results["entra.user.E1"].GetOperations(); slices.Contains(got, writer.OpRevokeSessions) {
		t.Errorf("the restarted writer revoked again: %v", got)
	}
	if got := p.emulator.Stats().Operations[emulator.OpRevokeSessions]; got != 1 {
		t.Errorf("%d revokeSignInSessions requests, want 1", got)
	}
	if strings.Contains(logs.String(), "jane.doe@corp.example.test") {
		t.Errorf("the writer's log holds the leaver's userPrincipalName")
	}
}
