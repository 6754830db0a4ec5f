package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestLicenceErrors: a licensed group's result on RESULTS naming E1 in error shows in
// "worker E1" (group, SKU, error) and in "members unit-sales".
func TestLicenceErrors(t *testing.T) {
	addr, natsURL := startOrgModelWithNATS(t)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	const sku = "6fd2c87f-b296-42f0-b197-1e91e994b900"
	path := subject.GroupPath(orgsyncv1.Target_TARGET_ENTRA, "unit-sales")
	result := &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP, Key: "unit-sales", Revision: 1,
		Outcome: orgsyncv1.Outcome_OUTCOME_UNCHANGED, ObservedAt: timestamppb.New(time.Date(2026, 3, 2, 9, 5, 0, 0, time.UTC)),
		LicenseErrors: []*orgsyncv1.MemberLicenseError{{MemberObjectId: "obj-e1", WorkerId: "E1", SkuId: sku, Error: orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION}}}
	if _, err := stream.NewPublisher(js).Publish(t.Context(), subject.ResultSubject(path), path+"-1", result); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"worker", []string{"worker", "E1"}, []string{"LICENCE ERRORS", "entra   unit-sales  " + sku + "  count-violation  2026-03-02T09:05:00Z"}},
		{"members", []string{"members", "unit-sales"}, []string{"LICENCE ERRORS (seen 2026-03-02T09:05:00Z)", "E1      obj-e1     " + sku + "  count-violation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				out.Reset()
				if err := run(t.Context(), append([]string{"--addr", addr}, tc.args...), &out); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(out.String(), "LICENCE ERRORS") || time.Now().After(deadline) {
					break
				}
			}
			for _, line := range tc.want {
				if !strings.Contains(out.String(), line) {
					t.Errorf("output lacks %q:\n%s", line, out.String())
				}
			}
		})
	}
}
