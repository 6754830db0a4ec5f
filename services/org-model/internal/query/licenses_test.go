package query

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

const testSku = "6fd2c87f-b296-42f0-b197-1e91e994b900"

// TestLicenseErrorsShowOnTheWorkerAndTheGroup: the members in error a licensed group's result
// lists show on the worker's Entra account (matched by worker id, or by object id when the writer
// did not know the worker) and on the group; a failed result keeps them; a converged result
// without them clears them.
func TestLicenseErrorsShowOnTheWorkerAndTheGroup(t *testing.T) {
	s := newPlanServer(t, 3)
	entra := orgsyncv1.Target_TARGET_ENTRA
	groupKey := model.GroupKey("sales")
	groupPath := subject.GroupPath(entra, groupKey)
	observed := timestamppb.New(planNow)
	s.Results.Record(subject.UserPath(entra, "E2"), &orgsyncv1.WriterResult{Target: entra, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: "E2",
		Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, ObjectId: "obj-e2"})
	s.Results.Record(groupPath, &orgsyncv1.WriterResult{Target: entra, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP, Key: groupKey,
		Outcome: orgsyncv1.Outcome_OUTCOME_UNCHANGED, ObservedAt: observed, LicenseErrors: []*orgsyncv1.MemberLicenseError{
			{MemberObjectId: "obj-e1", WorkerId: "E1", SkuId: testSku, Error: orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION},
			{MemberObjectId: "OBJ-E2", SkuId: testSku, Error: orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION},
		}})

	workerErrors := func(workerID string) []*orgsyncv1.WorkerLicenseError {
		t.Helper()
		resp, err := s.GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{WorkerId: workerID})
		if err != nil {
			t.Fatalf("GetWorker(%s): %v", workerID, err)
		}
		for _, account := range resp.GetAccounts() {
			if account.GetTarget() == entra {
				return account.GetLicenseErrors()
			}
		}
		t.Fatalf("GetWorker(%s): no Entra account", workerID)
		return nil
	}
	for _, tc := range []struct {
		workerID string
		want     []*orgsyncv1.WorkerLicenseError
	}{
		{"E1", []*orgsyncv1.WorkerLicenseError{{GroupKey: groupKey, SkuId: testSku, MemberObjectId: "obj-e1", ObservedAt: observed,
			Error: orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION}}},
		{"E2", []*orgsyncv1.WorkerLicenseError{{GroupKey: groupKey, SkuId: testSku, MemberObjectId: "OBJ-E2", ObservedAt: observed,
			Error: orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION}}},
		{"E3", nil},
	} {
		t.Run("worker "+tc.workerID, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, workerErrors(tc.workerID), protocmp.Transform()); diff != "" {
				t.Errorf("licence errors (-want +got):\n%s", diff)
			}
		})
	}

	group, err := s.ListGroupMembers(t.Context(), &orgsyncv1.ListGroupMembersRequest{Target: entra, GroupKey: groupKey, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(group.GetLicenseErrors()) != 2 || !group.GetLicenseErrorsObservedAt().AsTime().Equal(planNow) {
		t.Errorf("group's licence errors on a page of one member: %v at %v, want both members at %v", group.GetLicenseErrors(), group.GetLicenseErrorsObservedAt(), planNow)
	}

	// The group's write stays the last write when a later result of the group (a re-read of its
	// members in error) makes none.
	s.Results.Record(groupPath, &orgsyncv1.WriterResult{Target: entra, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP, Key: groupKey,
		Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, ObservedAt: observed, Operations: []string{"group.assign-license"}})
	s.Results.Record(groupPath, &orgsyncv1.WriterResult{Target: entra, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP, Key: groupKey,
		Outcome: orgsyncv1.Outcome_OUTCOME_UNCHANGED, ObservedAt: timestamppb.New(planNow.Add(time.Minute)), LicenseErrors: group.GetLicenseErrors()})
	if last := s.Results.LastWrite(); last == nil || !last.AsTime().Equal(planNow) {
		t.Errorf("last write %v after a re-read without writes, want the group's write at %v", last, planNow)
	}

	// A failed convergence read nothing: the errors last read stay.
	s.Results.Record(groupPath, &orgsyncv1.WriterResult{Target: entra, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP, Key: groupKey, Outcome: orgsyncv1.Outcome_OUTCOME_FAILED})
	if got := workerErrors("E1"); len(got) != 1 {
		t.Errorf("after a failed result, E1's licence errors: %v, want the one last read", got)
	}
	// A converged result without members in error clears them.
	s.Results.Record(groupPath, &orgsyncv1.WriterResult{Target: entra, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_GROUP, Key: groupKey, Outcome: orgsyncv1.Outcome_OUTCOME_UNCHANGED})
	if got := workerErrors("E1"); len(got) != 0 {
		t.Errorf("after a result without errors, E1's licence errors: %v, want none", got)
	}
	group, err = s.ListGroupMembers(t.Context(), &orgsyncv1.ListGroupMembersRequest{Target: entra, GroupKey: groupKey})
	if err != nil {
		t.Fatal(err)
	}
	if len(group.GetLicenseErrors()) != 0 || group.GetLicenseErrorsObservedAt() != nil {
		t.Errorf("group's licence errors after a result without them: %v at %v", group.GetLicenseErrors(), group.GetLicenseErrorsObservedAt())
	}
}
