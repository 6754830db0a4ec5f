package query

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// groupLicenseErrors are the members in error a group's result listed, and when it was observed.
type groupLicenseErrors struct {
	errors     []*orgsyncv1.MemberLicenseError
	observedAt *timestamppb.Timestamp
}

// recordLicenseErrors keeps the members in error of a group's result. Only a result of a group
// the writer converged (APPLIED or UNCHANGED) says which members are in error now; a FAILED or
// SKIPPED result read nothing, so the errors last read stay. The caller holds r.mu.
func (r *Results) recordLicenseErrors(path string, result *orgsyncv1.WriterResult) {
	if result.GetKind() != orgsyncv1.ObjectKind_OBJECT_KIND_GROUP {
		return
	}
	switch result.GetOutcome() {
	case orgsyncv1.Outcome_OUTCOME_APPLIED, orgsyncv1.Outcome_OUTCOME_UNCHANGED:
	default:
		return
	}
	if len(result.GetLicenseErrors()) == 0 {
		delete(r.licenseErrors, path)
		return
	}
	r.licenseErrors[path] = groupLicenseErrors{errors: result.GetLicenseErrors(), observedAt: result.GetObservedAt()}
}

// GroupLicenseErrors returns the members whose licence from the group at path is in error, as
// the group's newest converged result listed them, and when it was observed (nil when none).
func (r *Results) GroupLicenseErrors(path string) ([]*orgsyncv1.MemberLicenseError, *timestamppb.Timestamp) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	entry, ok := r.licenseErrors[path]
	if !ok {
		return nil, nil
	}
	return entry.errors, entry.observedAt
}

// workerLicenseErrors returns a worker's licences in error from the groups it is a direct member
// of (group-based licensing gives a licence only to direct members). A group's result names the
// member by worker id when the writer knew it, and always by object id: either matches.
func (r *Results) workerLicenseErrors(target orgsyncv1.Target, workerID, objectID string, groupKeys []string) []*orgsyncv1.WorkerLicenseError {
	var found []*orgsyncv1.WorkerLicenseError
	for _, groupKey := range groupKeys {
		memberErrors, observedAt := r.GroupLicenseErrors(subject.GroupPath(target, groupKey))
		for _, memberError := range memberErrors {
			byWorker := memberError.GetWorkerId() != "" && memberError.GetWorkerId() == workerID
			byObject := objectID != "" && strings.EqualFold(memberError.GetMemberObjectId(), objectID)
			if !byWorker && !byObject {
				continue
			}
			found = append(found, &orgsyncv1.WorkerLicenseError{
				GroupKey: groupKey, SkuId: memberError.GetSkuId(), Error: memberError.GetError(),
				MemberObjectId: memberError.GetMemberObjectId(), ObservedAt: observedAt,
			})
		}
	}
	slices.SortFunc(found, func(a, b *orgsyncv1.WorkerLicenseError) int {
		if c := strings.Compare(a.GetGroupKey(), b.GetGroupKey()); c != 0 {
			return c
		}
		return strings.Compare(a.GetSkuId(), b.GetSkuId())
	})
	return found
}
