package writer

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// licensedGroup is a group whose desired state gives licences, as the writer last converged it:
// its object id and the result it reported, which a re-read of its members in error updates.
type licensedGroup struct {
	id     string
	path   string
	result *orgsyncv1.WriterResult
}

// memberLicenseErrors turns the directory's members in error into the result's, naming each
// member's worker when the writer knows the member's object id.
func (w *Writer) memberLicenseErrors(licenseErrors []directory.LicenseError) []*orgsyncv1.MemberLicenseError {
	w.mu.Lock()
	workerOf := make(map[string]string, len(w.userIDs))
	for workerID, id := range w.userIDs {
		workerOf[strings.ToLower(id)] = workerID
	}
	w.mu.Unlock()
	out := make([]*orgsyncv1.MemberLicenseError, 0, len(licenseErrors))
	for _, licenseError := range licenseErrors {
		out = append(out, &orgsyncv1.MemberLicenseError{
			MemberObjectId: licenseError.UserID, WorkerId: workerOf[strings.ToLower(licenseError.UserID)],
			SkuId: licenseError.SkuID, Error: licenseErrorKind(licenseError.Error),
		})
	}
	return out
}

// noteSettled keeps what the licence re-read needs from a result just reported: a licensed
// group's id and result, and the groups whose members changed.
func (w *Writer) noteSettled(obj *orgsyncv1.DesiredObject, path string, result *orgsyncv1.WriterResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group := obj.GetGroup(); group != nil {
		if obj.GetTombstone() || !group.GetManageLicenses() || len(group.GetLicenses()) == 0 || result.GetObjectId() == "" {
			delete(w.licensedGroups, obj.GetKey())
			return
		}
		w.licensedGroups[obj.GetKey()] = licensedGroup{id: result.GetObjectId(), path: path, result: proto.CloneOf(result)}
		delete(w.membersChanged, obj.GetKey()) // its convergence has just read them
		return
	}
	if m := obj.GetMembership(); m != nil && result.GetOutcome() == orgsyncv1.Outcome_OUTCOME_APPLIED {
		w.membersChanged[m.GetGroupKey()] = true
	}
}

// refreshLicenseErrors re-reads the members in error of each licensed group whose members
// changed since its last read, and reports the group's result again when they differ: a member
// added to a licensed group shows its licence error without waiting for the group's next
// convergence. It reads and never writes (no audit record). Group-based licensing works in the
// background, so a member added moments ago may not be processed yet; the group's next
// convergence (a revision or a drift correction) reads them again.
func (w *Writer) refreshLicenseErrors(ctx context.Context) {
	w.mu.Lock()
	var due []string
	for groupKey := range w.membersChanged {
		if _, licensed := w.licensedGroups[groupKey]; licensed {
			due = append(due, groupKey)
		}
	}
	clear(w.membersChanged)
	w.mu.Unlock()
	slices.Sort(due)
	for _, groupKey := range due {
		w.mu.Lock()
		group, ok := w.licensedGroups[groupKey]
		w.mu.Unlock()
		if !ok {
			continue
		}
		licenseErrors, err := w.dir.GroupLicenseErrors(ctx, group.id)
		if err != nil {
			// The group's next convergence reads them again; nothing is lost but freshness.
			w.logger.WarnContext(ctx, "licence errors of a group not re-read", "group_key", groupKey, "error", err)
			continue
		}
		memberErrors := w.memberLicenseErrors(licenseErrors)
		if sameLicenseErrors(memberErrors, group.result.GetLicenseErrors()) {
			continue
		}
		result := proto.CloneOf(group.result)
		result.Outcome, result.Operations, result.Changes = orgsyncv1.Outcome_OUTCOME_UNCHANGED, nil, nil
		result.ObservedAt = timestamppb.New(w.now())
		result.LicenseErrors = memberErrors
		msgID := fmt.Sprintf("%s:%d:license-errors:%d", group.path, result.GetRevision(), w.now().UnixNano())
		if err := w.engine.ReportAs(ctx, group.path, msgID, result); err != nil {
			w.logger.WarnContext(ctx, "licence errors of a group not reported", "group_key", groupKey, "error", err)
			continue
		}
		if len(memberErrors) > 0 {
			w.logger.WarnContext(ctx, "members of a group have licence errors", "group_key", groupKey, "members_in_error", len(memberErrors))
		}
		w.mu.Lock()
		if current, ok := w.licensedGroups[groupKey]; ok && current.id == group.id {
			current.result = result
			w.licensedGroups[groupKey] = current
		}
		w.mu.Unlock()
	}
}

// sameLicenseErrors says whether two lists of members in error hold the same members, SKUs and
// errors, in any order.
func sameLicenseErrors(a, b []*orgsyncv1.MemberLicenseError) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(e *orgsyncv1.MemberLicenseError) string {
		return strings.ToLower(e.GetMemberObjectId()) + "|" + strings.ToLower(e.GetSkuId()) + "|" + e.GetError().String() + "|" + e.GetWorkerId()
	}
	keys := make(map[string]int, len(a))
	for _, e := range a {
		keys[key(e)]++
	}
	for _, e := range b {
		if keys[key(e)] == 0 {
			return false
		}
		keys[key(e)]--
	}
	return true
}

// RefreshLicenseErrors re-reads the members in error of every licensed group the writer has
// converged since it started, and reports those that changed; the drift pass calls it, so an
// error Graph settled after the last read (group-based licensing works in the background), or
// one cleared by a change outside orgsync (a usage location, more prepaid units), shows within a
// drift interval. It reads and never writes; it waits for the batch being applied to finish.
func (w *Writer) RefreshLicenseErrors(ctx context.Context) {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	w.mu.Lock()
	for groupKey := range w.licensedGroups {
		w.membersChanged[groupKey] = true
	}
	w.mu.Unlock()
	w.refreshLicenseErrors(ctx)
}
