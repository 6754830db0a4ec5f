package service

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

const dryRunSCIMToken = "scim-token-0123456789abcdef"

// dryRunBulk is a SCIM BulkRequest as Entra's API-driven provisioning sends it: a hire and a leave.
const dryRunBulk = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
 {"method":"POST","bulkId":"b1","path":"/Users","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
  "externalId":"E1","name":{"givenName":"Ada","familyName":"Lovelace"},"active":true}},
 {"method":"POST","bulkId":"b2","path":"/Users","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
  "externalId":"E2","name":{"givenName":"Alan","familyName":"Turing"},"active":false}}]}`

// startDryRunService runs hr-ingest with a scim source and orgsync's static tokens (one per
// role), and returns its HTTP base URL, the tokens and the JetStream it publishes to.
func startDryRunService(t *testing.T) (string, map[auth.Role]string, jetstream.JetStream) {
	t.Helper()
	ns := natsembed.StartForTest(t)
	authCfg, tokens := authtest.RoleTokens(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, Config{
		NATSURL: ns.ClientURL(),
		Server:  server.Config{Name: Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Auth: authCfg},
		Streams: stream.DefaultConfig(),
		Sources: []SourceConfig{{Name: "entra", Kind: KindSCIM, Tokens: []string{dryRunSCIMToken}}},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + svc.HTTPAddr(), tokens, js
}

func post(t *testing.T, url, contentType, authorization, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if authorization != "" {
		req.Header.Set("Authorization", "Bearer "+authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// TestDryRun: the dry run takes a source's body as the source would send it, answers the events
// the real route would publish (ids included) and publishes nothing; it is open only to callers
// with an orgsync token, never to the source's own credentials.
func TestDryRun(t *testing.T) {
	base, tokens, js := startDryRunService(t)
	dryRun := base + "/v1/dry-run/entra"

	t.Run("refused without a token", func(t *testing.T) {
		resp, body := post(t, dryRun, "application/scim+json", "", dryRunBulk)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("status = %d %q, want 401 with WWW-Authenticate", resp.StatusCode, body)
		}
	})
	t.Run("refused with the source's own token", func(t *testing.T) {
		if resp, body := post(t, dryRun, "application/scim+json", dryRunSCIMToken, dryRunBulk); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status = %d %q, want 401", resp.StatusCode, body)
		}
	})
	t.Run("a bad body gets the real route's problem", func(t *testing.T) {
		bad := strings.Replace(dryRunBulk, `"externalId":"E1",`, "", 1)
		resp, body := post(t, dryRun, "application/scim+json", tokens[auth.Viewer], bad)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(body), `"pointer":"/Operations/0/data/externalId"`) {
			t.Errorf("answer = %d %s %s, want a 400 problem naming /Operations/0/data/externalId", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})

	resp, body := post(t, dryRun, "application/scim+json", tokens[auth.Viewer], dryRunBulk)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("dry run = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var result struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &result); err != nil {
		t.Fatal(err)
	}
	var dryEvents []*orgsyncv1.HREvent
	for _, raw := range result.Events {
		var event orgsyncv1.HREvent
		if err := protojson.Unmarshal(raw, &event); err != nil {
			t.Fatalf("%v in %s", err, raw)
		}
		dryEvents = append(dryEvents, &event)
	}
	want := []*orgsyncv1.HREvent{
		{Source: "entra", Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{WorkerId: "E1",
			Name: &orgsyncv1.PersonName{GivenName: "Ada", FamilyName: "Lovelace"}, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE}}},
		{Source: "entra", Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{WorkerId: "E2",
			Name: &orgsyncv1.PersonName{GivenName: "Alan", FamilyName: "Turing"}, EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED}}},
	}
	ignoreStamps := protocmp.IgnoreFields(&orgsyncv1.HREvent{}, "event_id", "received_at")
	if diff := cmp.Diff(want, dryEvents, protocmp.Transform(), ignoreStamps); diff != "" {
		t.Errorf("dry-run events (-want +got):\n%s", diff)
	}
	for i, event := range dryEvents {
		if event.GetEventId() == "" || event.GetReceivedAt() == nil {
			t.Errorf("dry-run event %d has no id or receive time: %v", i, event)
		}
	}
	if stored := streamtest.HREvents(t, js); len(stored) != 0 {
		t.Fatalf("the dry run published %d events", len(stored))
	}

	// The real route, given the same body, publishes the same events under the same ids (workers
	// are published concurrently, so in any order).
	resp, body = post(t, base+"/v1/sources/entra/scim/Bulk", "application/scim+json", dryRunSCIMToken, dryRunBulk)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("real request = %d %s", resp.StatusCode, body)
	}
	ignoreReceived := protocmp.IgnoreFields(&orgsyncv1.HREvent{}, "received_at")
	byWorker := cmpopts.SortSlices(func(a, b *orgsyncv1.HREvent) bool { return a.GetWorker().GetWorkerId() < b.GetWorker().GetWorkerId() })
	if diff := cmp.Diff(dryEvents, streamtest.HREvents(t, js), protocmp.Transform(), ignoreReceived, byWorker); diff != "" {
		t.Errorf("stored by the real route (-dry run +stored):\n%s", diff)
	}
}
