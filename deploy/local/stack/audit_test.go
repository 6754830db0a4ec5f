package stack_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// TestAuditShowsEveryWriteWithItsCause hires, moves and lets go of a worker through the whole
// pipeline and asks org-model's audit API for the worker's writes: they come in the order they
// were made, each with the HR event that caused it and the trace to find it by.
func TestAuditShowsEveryWriteWithItsCause(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(id string, body []byte) {
		t.Helper()
		resp, respBody, err := stack.Post(ctx, client, s.WebhookURL(), id, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook %s: %d %s", id, resp.StatusCode, respBody)
		}
	}
	conn, err := grpc.NewClient(s.OrgModel.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(s.AdminToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	api := orgsyncv1grpc.NewOrgModelServiceClient(conn)
	userWrites := func() []string {
		resp, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E1001"})
		if err != nil {
			t.Fatal(err)
		}
		var causes []string
		for _, record := range resp.GetRecords() {
			if record.GetPath() == "entra.user.E1001" {
				causes = append(causes, record.GetCause().GetHrEventId())
			}
		}
		return causes
	}

	post("unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"}))
	post("unit-marketing", event("org_unit.created", map[string]any{"orgUnitId": "marketing", "name": "Marketing"}))
	worker := map[string]any{
		"workerId": "E1001", "name": map[string]any{"givenName": "Jane", "familyName": "Doe"},
		"jobTitle": "Account Executive", "orgUnitId": "sales", "employmentType": "employee",
		"hireDate": "2026-03-01", "startDate": "2026-03-01",
	}
	post("msg_hire", event("worker.created", worker))
	eventually(t, func() bool { return len(userWrites()) == 1 })
	worker["orgUnitId"], worker["jobTitle"] = "marketing", "Marketing Manager"
	post("msg_move", event("worker.updated", worker))
	eventually(t, func() bool { return len(userWrites()) == 2 })
	worker["employmentStatus"], worker["endDate"] = "terminated", "2026-06-30"
	post("msg_leave", event("worker.updated", worker))
	eventually(t, func() bool { return len(userWrites()) == 3 })

	resp, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E1001"})
	if err != nil {
		t.Fatal(err)
	}
	type write struct{ Path, Operation, HREvent string }
	var userRecords []write
	order := map[string]int{"msg_hire": 1, "msg_move": 2, "msg_leave": 3}
	var lastSequence uint64
	lastCause := 0
	for _, record := range resp.GetRecords() {
		cause := record.GetCause().GetHrEventId()
		if order[cause] == 0 {
			t.Errorf("record %d (%s) has cause %q, want one of the three HR events", record.GetSequence(), record.GetPath(), cause)
		}
		if record.GetSequence() <= lastSequence || order[cause] < lastCause {
			t.Errorf("record %d (%s, %s) is out of order", record.GetSequence(), record.GetPath(), cause)
		}
		lastSequence, lastCause = record.GetSequence(), order[cause]
		if len(record.GetTraceId()) != 32 {
			t.Errorf("record %d has trace id %q", record.GetSequence(), record.GetTraceId())
		}
		if len(record.GetResult().GetOperations()) == 0 {
			t.Errorf("record %d records no operation", record.GetSequence())
		}
		if record.GetPath() == "entra.user.E1001" {
			userRecords = append(userRecords, write{record.GetPath(), record.GetResult().GetOperations()[0], cause})
		}
	}
	want := []write{
		{"entra.user.E1001", "user.create", "msg_hire"},
		{"entra.user.E1001", "user.update", "msg_move"},
		{"entra.user.E1001", "user.update", "msg_leave"},
	}
	if diff := cmp.Diff(want, userRecords); diff != "" {
		t.Errorf("the worker's account writes (-want +got):\n%s", diff)
	}
	memberCauses := map[string]bool{}
	for _, record := range resp.GetRecords() {
		if record.GetPath() != "entra.user.E1001" {
			memberCauses[record.GetCause().GetHrEventId()] = true
		}
	}
	for _, cause := range []string{"msg_hire", "msg_move"} {
		if !memberCauses[cause] {
			t.Errorf("no membership write caused by %s; membership causes: %v", cause, slices.Sorted(maps.Keys(memberCauses)))
		}
	}

	// A group's audit holds its own writes and its memberships; a time range after them is empty.
	groupResp, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{GroupKey: "unit-marketing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(groupResp.GetRecords()) == 0 {
		t.Error("no audit records for group unit-marketing")
	}
	later, err := api.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: "E1001", Since: timestampAfter(resp)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(later.GetRecords()); n != 0 {
		t.Errorf("%d records after the last write", n)
	}
}

// timestampAfter is a moment just after the last record of resp.
func timestampAfter(resp *orgsyncv1.ListAuditResponse) *timestamppb.Timestamp {
	last := resp.GetRecords()[len(resp.GetRecords())-1].GetRecordedAt().AsTime()
	return timestamppb.New(last.Add(time.Millisecond))
}
