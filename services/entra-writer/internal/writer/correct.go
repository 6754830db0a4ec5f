package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// What the drift reconcile (package drift) needs of the writer: its record of the objects it
// manages, whether it has caught up with an object's desired state, and a way to put an object
// back to that state.

// Objects returns orgsync's record of the objects it manages in Entra ID, by object id: the
// worker id of each user, the group key of each group.
func (w *Writer) Objects() (users, groups map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	users, groups = make(map[string]string, len(w.userIDs)), make(map[string]string, len(w.groupIDs))
	for workerID, id := range w.userIDs {
		users[id] = workerID
	}
	for groupKey, id := range w.groupIDs {
		groups[id] = groupKey
	}
	return users, groups
}

// Converged reports whether the writer (this replica or another) has dealt with revision of the
// object at path, so that a difference between the directory and that revision is drift rather
// than a change still on its way.
func (w *Writer) Converged(path string, revision uint64) bool {
	return w.engine.Applied(path) >= revision
}

// Correct applies obj's desired state again, to undo an edit made outside orgsync that reason
// describes. It waits for the batch being applied to finish. A correction is reported to RESULTS
// and AUDIT like any other write, with the cause "drift: reason". With reportOnly nothing is
// written: the result's operations say what a correction would write.
func (w *Writer) Correct(ctx context.Context, obj *orgsyncv1.DesiredObject, reason string, reportOnly bool) (*orgsyncv1.WriterResult, error) {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	if reportOnly {
		real := w.dir
		w.dir = recordOnly{dir: real}
		defer func() { w.dir = real }()
	}
	// As a late attempt: a recorded object id that Graph no longer knows is looked up again
	// (and a deleted user restored) instead of waited for as replication lag.
	result, err := w.Apply(ctx, obj, lostAfter)
	if err != nil {
		return nil, fmt.Errorf("correcting %s: %w", obj.GetKey(), err)
	}
	if reportOnly || len(result.GetOperations()) == 0 {
		return result, nil
	}
	if err := w.engine.ReportCorrection(ctx, obj, result, reason); err != nil {
		return result, err
	}
	// A licensed group's correction reported its members in error: later re-reads compare with it.
	if path, err := subject.ObjectPath(obj); err == nil {
		w.noteSettled(obj, path, result)
	}
	return result, nil
}

// RemoveStray removes from a group orgsync manages a member its desired state does not have
// (added outside orgsync), and records the write on AUDIT. memberKey is the member's worker id or
// group key, or its object id when orgsync does not know it.
func (w *Writer) RemoveStray(ctx context.Context, groupKey, groupID, memberKey, memberID string) (*orgsyncv1.WriterResult, error) {
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	if err := w.dir.RemoveMember(ctx, groupID, memberID); err != nil {
		return nil, fmt.Errorf("removing stray member %s of %s: %w", memberKey, groupKey, err)
	}
	return w.engine.AuditStray(ctx, groupKey, memberKey, memberID)
}

// recordOnly reads from the directory and drops every write, for a report-only drift reconcile.
// Creates and restores are refused: a report never needs them (a deleted object is reported as
// such, not re-created). It wraps the port method by method, so a method added to Directory does
// not compile here until it is decided whether it is a read to pass on or a write to drop.
type recordOnly struct{ dir Directory }

// compile-time check that recordOnly still covers the port.
var _ Directory = recordOnly{}

var errReportOnly = &directory.Error{Op: "report-only", Class: directory.ClassInvalid, Code: "orgsync_ReportOnly", Message: "not written: drift is only reported"}

// Reads go through.

func (r recordOnly) FindUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error) {
	return r.dir.FindUserByEmployeeID(ctx, employeeID)
}
func (r recordOnly) GetUser(ctx context.Context, id string) (*directory.User, error) {
	return r.dir.GetUser(ctx, id)
}
func (r recordOnly) FindDeletedUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error) {
	return r.dir.FindDeletedUserByEmployeeID(ctx, employeeID)
}
func (r recordOnly) GetUserByPrincipalName(ctx context.Context, principalName string) (*directory.User, error) {
	return r.dir.GetUserByPrincipalName(ctx, principalName)
}
func (r recordOnly) FindGroupByMailNickname(ctx context.Context, mailNickname string) (*directory.Group, error) {
	return r.dir.FindGroupByMailNickname(ctx, mailNickname)
}
func (r recordOnly) GetGroup(ctx context.Context, id string) (*directory.Group, error) {
	return r.dir.GetGroup(ctx, id)
}
func (r recordOnly) GetManager(ctx context.Context, userID string) (string, error) {
	return r.dir.GetManager(ctx, userID)
}
func (r recordOnly) GroupLicenseErrors(ctx context.Context, groupID string) ([]directory.LicenseError, error) {
	return r.dir.GroupLicenseErrors(ctx, groupID)
}

// Creates and restores are refused.

func (recordOnly) CreateUser(context.Context, directory.UserAttributes, string) (*directory.User, error) {
	return nil, errReportOnly
}
func (recordOnly) RestoreUser(context.Context, string) (*directory.User, error) {
	return nil, errReportOnly
}
func (recordOnly) CreateGroup(context.Context, directory.GroupAttributes) (*directory.Group, error) {
	return nil, errReportOnly
}

// Every other write is dropped, reported as done.

func (recordOnly) UpdateUser(context.Context, string, directory.UserAttributes, []directory.Field) error {
	return nil
}
func (recordOnly) DeleteUser(context.Context, string) error                             { return nil }
func (recordOnly) UpdateGroup(context.Context, string, directory.GroupAttributes) error { return nil }
func (recordOnly) DeleteGroup(context.Context, string) error                            { return nil }
func (recordOnly) AddMember(context.Context, string, string) error                      { return nil }
func (recordOnly) AddMembers(context.Context, string, []string) error                   { return nil }
func (recordOnly) RemoveMember(context.Context, string, string) error                   { return nil }
func (recordOnly) SetManager(context.Context, string, string) error                     { return nil }
func (recordOnly) RemoveManager(context.Context, string) error                          { return nil }
func (recordOnly) RevokeSignInSessions(context.Context, string) error                   { return nil }
func (recordOnly) DeleteTemporaryAccessPass(context.Context, string, string) error      { return nil }
func (recordOnly) SendMail(context.Context, string, directory.Mail) error               { return nil }

// CreateTemporaryAccessPass is refused: a report never makes a credential.
func (recordOnly) CreateTemporaryAccessPass(context.Context, string, time.Time, int, bool) (*directory.AccessPass, error) {
	return nil, errReportOnly
}

// ResetPassword is refused: a report never makes a credential.
func (recordOnly) ResetPassword(context.Context, string, directory.Secret) error {
	return errReportOnly
}
func (recordOnly) AssignGroupLicenses(context.Context, string, []directory.License, []string) error {
	return nil
}
func (recordOnly) RemoveMembers(_ context.Context, refs []directory.MemberRef) []error {
	return make([]error, len(refs))
}
