package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/service"
)

// startOrgModel runs a real org-model over embedded JetStream, loaded with a small company.
func startOrgModel(t *testing.T) string {
	t.Helper()
	addr, _ := startOrgModelWithNATS(t)
	return addr
}

// startOrgModelWithNATS is startOrgModel, also returning the NATS URL.
func startOrgModelWithNATS(t *testing.T) (addr, natsURL string) {
	t.Helper()
	f := startFixture(t, server.TLSConfig{})
	return f.addr, f.natsURL
}

// fixture is a running org-model and the credentials to call it.
type fixture struct {
	addr, natsURL string
	// tokens holds a static token per role; the admin token is also in the default token file.
	tokens map[auth.Role]string
	issuer *authtest.Issuer
}

// startFixture starts org-model with static tokens and an OIDC issuer, serving tlsCfg, and puts
// the admin token where orgsyncctl looks by default (a temporary XDG_CONFIG_HOME).
// connectArgs are the flags orgsyncctl needs to reach it (TLS).
func startFixture(t *testing.T, tlsCfg server.TLSConfig, connectArgs ...string) fixture {
	t.Helper()
	authCfg, tokens := authtest.RoleTokens(t)
	issuer := authtest.NewIssuer(t)
	authCfg.Issuer, authCfg.Audience = issuer.URL(), authtest.Audience
	t.Setenv("ORGSYNC_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tokenFile, err := auth.DefaultTokenFile()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(tokens[auth.Admin]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := streamtest.Start(t)
	js := srv.JS
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	pub := stream.NewPublisher(js)
	for i, event := range []*orgsyncv1.HREvent{
		{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{OrgUnitId: "commercial", Name: "Commercial"}}},
		{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{OrgUnitId: "sales", Name: "Sales", ParentOrgUnitId: "commercial"}}},
		{OccurredAt: timestamppb.New(t0), Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{WorkerId: "E1", OrgUnitId: "sales",
			Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"}, JobTitle: "Account Executive",
			EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}}},
	} {
		event.EventId, event.Source = "e"+string(rune('0'+i)), "test"
		subject, _ := subject.HRSubject(event)
		if _, err := pub.Publish(t.Context(), subject, event.EventId, event); err != nil {
			t.Fatal(err)
		}
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("upnDomains: [corp.example.com]\ngroups: {rollup: {enabled: true}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	svc, err := service.New(ctx, service.Config{
		NATSURL: srv.ClientURL(), Streams: stream.DefaultConfig(), PolicyFile: policyFile, Clock: clock.NewFake(t0),
		Server: server.Config{Name: service.Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ReadinessInterval: 10 * time.Millisecond,
			Auth: authCfg, TLS: tlsCfg},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var out bytes.Buffer
		if run(t.Context(), append(append([]string{"--addr", svc.GRPCAddr()}, connectArgs...), "status"), &out) == nil && strings.Contains(out.String(), "caught up        true") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("org-model not caught up within 10s")
		}
	}
	return fixture{addr: svc.GRPCAddr(), natsURL: srv.ClientURL(), tokens: tokens, issuer: issuer}
}

func TestCommands(t *testing.T) {
	addr := startOrgModel(t)
	tests := []struct {
		name string
		args []string
		want []string // lines the output must contain
	}{
		{"status", []string{"status"}, []string{"caught up        true", "workers          1", "pending batches  0"}},
		{"worker", []string{"worker", "E1"}, []string{"phase        active", "entra   jane.doe@corp.example.com  true     1         unit-sales"}},
		{"workers", []string{"workers"}, []string{"E1      Jane Doe  sales  Account Executive  active  jane.doe@corp.example.com  true"}},
		{"tree", []string{"tree"}, []string{"Commercial  commercial  -        0", "  Sales     sales       -        1"}},
		{"members of a roll-up group", []string{"members", "all-commercial"}, []string{"group  all-sales", "group  unit-commercial"}},
		{"explain", []string{"explain", "all-commercial", "E1"}, []string{"through  all-commercial ⊃ all-sales ⊃ unit-sales ∋ E1",
			"because  HR places the worker in org unit sales (Commercial > Sales)"}},
		{"pending", []string{"pending"}, []string{"BATCH  CREATED  DISABLES  REMOVALS  CAUSE  REASON"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(t.Context(), append([]string{"--addr", addr}, tc.args...), &out); err != nil {
				t.Fatal(err)
			}
			for _, line := range tc.want {
				if !strings.Contains(out.String(), line) {
					t.Errorf("output lacks %q:\n%s", line, out.String())
				}
			}
		})
	}
	t.Run("plan events as JSON", func(t *testing.T) {
		events := filepath.Join(t.TempDir(), "leaver.json")
		if err := os.WriteFile(events, []byte(`[{"eventId":"x","occurredAt":"2026-03-02T09:00:00Z","worker":{"workerId":"E1","orgUnitId":"sales","employmentStatus":"EMPLOYMENT_STATUS_TERMINATED"}}]`), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run(t.Context(), []string{"--addr", addr, "--json", "plan", "--events", events}, &out); err != nil {
			t.Fatal(err)
		}
		var plan orgsyncv1.PlanResponse
		if err := protojson.Unmarshal(out.Bytes(), &plan); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if plan.GetDisables() != 1 || plan.GetRemovals() != 1 {
			t.Errorf("plan: %d disables, %d removals", plan.GetDisables(), plan.GetRemovals())
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, args := range [][]string{{"worker"}, {"frobnicate"}, {"approve", "nope"}, {"--target", "ldap", "status"}} {
			if err := run(t.Context(), append([]string{"--addr", addr}, args...), &bytes.Buffer{}); err == nil {
				t.Errorf("%v: no error", args)
			}
		}
	})
}

// TestAudit records writes on stream AUDIT as a writer does and lists them: by worker, joined to
// the cause org-model published (or the cause the writer copied into its record), oldest first.
func TestAudit(t *testing.T) {
	addr, natsURL := startOrgModelWithNATS(t)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	pub := stream.NewPublisher(js)
	for _, record := range []struct {
		path   string
		result *orgsyncv1.WriterResult
	}{
		// A record without a cause: org-model joins it to the cause it published revision 1 with.
		{"entra.user.E1", &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER,
			Key: "E1", Revision: 1, Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, Operations: []string{"user.create"}}},
		{"entra.group.unit-sales", &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP,
			Key: "unit-sales", Revision: 1, Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, Operations: []string{"group.create"}}},
		// A record with the cause the writer copied: it wins.
		{"entra.member.unit-sales.E1", &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_MEMBERSHIP,
			Key: "unit-sales/E1", Revision: 1, Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, Operations: []string{"member.add"},
			Cause: &orgsyncv1.Cause{HrEventId: "e2", Reason: "worker active in HR"}, TraceId: "0123456789abcdef0123456789abcdef"}},
	} {
		if _, err := pub.Publish(t.Context(), subject.AuditSubject(record.path), record.path, record.result); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want []string // paths with the cause's reason, in order
	}{
		{"worker", []string{"audit", "--worker", "E1"}, []string{"entra.user.E1 reconcile at start", "entra.member.unit-sales.E1 worker active in HR"}},
		{"group", []string{"audit", "--group", "unit-sales"}, []string{"entra.group.unit-sales reconcile at start", "entra.member.unit-sales.E1 worker active in HR"}},
		{"all, limited", []string{"audit", "--limit", "1"}, []string{"entra.user.E1 reconcile at start"}},
		{"since later", []string{"audit", "--since", "2999-01-01T00:00:00Z"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(t.Context(), append([]string{"--addr", addr, "--json"}, tc.args...), &out); err != nil {
				t.Fatal(err)
			}
			var resp orgsyncv1.ListAuditResponse
			if err := protojson.Unmarshal(out.Bytes(), &resp); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out.String())
			}
			var got []string
			for _, r := range resp.GetRecords() {
				got = append(got, r.GetPath()+" "+r.GetCause().GetReason())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("table", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"--addr", addr, "audit", "--worker", "E1"}, &out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"OPERATIONS", "user.create", "member.add", "e2", "0123456789abcdef0123456789abcdef"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("worker and group together", func(t *testing.T) {
		if err := run(t.Context(), []string{"--addr", addr, "audit", "--worker", "E1", "--group", "unit-sales"}, &bytes.Buffer{}); err == nil {
			t.Error("no error")
		}
	})
}

// TestStatusShowsServicesAndStreams checks that status lists the running services, as they
// report themselves, and every stream with its size.
func TestStatusShowsServicesAndStreams(t *testing.T) {
	addr := startOrgModel(t)
	var resp orgsyncv1.GetStatusResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"--addr", addr, "--json", "status"}, &out); err != nil {
			t.Fatal(err)
		}
		if err := protojson.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if len(resp.GetServices()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no service reported its status within 10s:\n%s", out.String())
		}
	}
	if got := resp.GetServices()[0].GetService(); got != service.Name {
		t.Errorf("service %q reported, want %q", got, service.Name)
	}
	var streams []string
	for _, st := range resp.GetStreams() {
		streams = append(streams, st.GetStream())
	}
	if diff := cmp.Diff([]string{stream.HR, stream.Directory, stream.Results, stream.Audit}, streams); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
	if resp.GetStreams()[0].GetMessages() != 3 {
		t.Errorf("HR holds %d messages, want 3", resp.GetStreams()[0].GetMessages())
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--addr", addr, "status"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SERVICE", "org-model", "STREAM", "DIRECTORY", "audit records"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
