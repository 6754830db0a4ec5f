package auditlog

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func TestChangesWithPolicy(t *testing.T) {
	before := map[string]string{"jobTitle": "Account Executive", "displayName": "Jane Doe", "department": "Sales", "accountEnabled": "true"}
	after := map[string]string{"jobTitle": "Marketing Manager", "displayName": "Jane Smith", "department": "Sales", "accountEnabled": "false"}
	for _, tc := range []struct {
		name  string
		allow bool
		want  []*orgsyncv1.AttributeChange
	}{
		{"redacted by default", false, []*orgsyncv1.AttributeChange{
			{Name: "accountEnabled", Before: "true", After: "false"},
			{Name: "displayName", Redacted: true},
			{Name: "jobTitle", Before: "Account Executive", After: "Marketing Manager"},
		}},
		{"allowed", true, []*orgsyncv1.AttributeChange{
			{Name: "accountEnabled", Before: "true", After: "false"},
			{Name: "displayName", Before: "Jane Doe", After: "Jane Smith"},
			{Name: "jobTitle", Before: "Account Executive", After: "Marketing Manager"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ChangesWithPolicy(before, after, tc.allow), protocmp.Transform()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	traceID := trace.TraceID{1, 2, 3}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: trace.SpanID{4}}))
	obj := &orgsyncv1.DesiredObject{Cause: &orgsyncv1.Cause{HrEventId: "msg_1", HrSequence: 7, Reason: "held batch approved", ApprovalBatchId: "b-42"}}
	result := &orgsyncv1.WriterResult{}
	Stamp(ctx, result, obj, nil)
	want := &orgsyncv1.WriterResult{Cause: obj.GetCause(), TraceId: traceID.String(), ApprovalBatchId: "b-42"}
	if diff := cmp.Diff(want, result, protocmp.Transform()); diff != "" {
		t.Errorf("stamped result (-want +got):\n%s", diff)
	}
}
