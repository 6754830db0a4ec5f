package apply

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
	"github.com/orgsync/orgsync/services/org-model/internal/identifiers"
)

// HeldReason is the reason of the cause of a desired user republished with its next identifier candidate.
const HeldReason = "identifier held in the directory by an account orgsync does not manage"

// loadIdentifiers gives the model the recorded identifiers before the HR replay, then adopts
// the identifiers of users already on DIRECTORY that have no record (written before recording
// existed), so that neither a restart nor an upgrade renames anyone.
func (a *Applier) loadIdentifiers(ctx context.Context) error {
	assignments, held, unreadable, err := a.deps.Identifiers.Load(ctx)
	if err != nil {
		return err
	}
	dropped := a.deps.Model.RestoreIdentifiers(assignments, held)
	adopted := 0
	for _, obj := range a.deps.Published.Live() {
		if a.deps.Model.AdoptPublished(obj) {
			adopted++
		}
	}
	if unreadable > 0 || dropped > 0 {
		// Those workers get identifiers from the candidates again when HR describes them.
		a.deps.Logger.WarnContext(ctx, "recorded identifiers not restored", "bucket", identifiers.Bucket, "unreadable", unreadable, "invalid_or_taken", dropped)
	}
	a.deps.Logger.InfoContext(ctx, "identifiers restored", "assignments", len(assignments)-dropped, "held", len(held), "adopted_from_directory", adopted)
	return nil
}

// recordIdentifiers writes the assignments and held values the model made since the last call,
// before anything that uses them is published: a UPN on DIRECTORY is always one the bucket has.
// It retries until the bucket acknowledges or ctx ends, like publish.
func (a *Applier) recordIdentifiers(ctx context.Context) error {
	assignments, held := a.deps.Model.TakeUnrecorded()
	return a.deps.Identifiers.Record(ctx, assignments, held, a.deps.Clock.Now())
}

// NoteResult reacts to a writer's result: a user create refused because an account orgsync does
// not manage holds the worker's UPN, mailNickname or sAMAccountName marks that value as held
// and gives the worker its next candidate. Results read before the HR replay is done wait for
// it (the identifiers they concern are not known yet).
func (a *Applier) NoteResult(ctx context.Context, result *orgsyncv1.WriterResult) error {
	if !isHeldConflict(result) {
		return nil
	}
	return a.deps.Engine.Do(ctx, func(ctx context.Context) error {
		if !a.caughtUp.Load() {
			a.heldConflicts = append(a.heldConflicts, result)
			return nil
		}
		return a.takeNextCandidate(ctx, result)
	})
}

func isHeldConflict(result *orgsyncv1.WriterResult) bool {
	if result.GetKind() != orgsyncv1.ObjectKind_OBJECT_KIND_USER || result.GetOutcome() != orgsyncv1.Outcome_OUTCOME_FAILED ||
		result.GetErrorClass() != orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT {
		return false
	}
	switch result.GetProperty() {
	case identifier.PropertyUPN, identifier.PropertyMailNickname, identifier.PropertySAMAccountName:
		return true
	}
	return false
}

// takeHeldConflicts handles the conflicts read during the replay. It runs on the engine's goroutine.
func (a *Applier) takeHeldConflicts(ctx context.Context) error {
	conflicts := a.heldConflicts
	a.heldConflicts = nil
	for _, result := range conflicts {
		if err := a.takeNextCandidate(ctx, result); err != nil {
			return err
		}
	}
	return nil
}

// takeNextCandidate applies one conflict result. Only a result about the revision published
// now counts: an older one is about identifiers already replaced. It runs on the engine's goroutine.
func (a *Applier) takeNextCandidate(ctx context.Context, result *orgsyncv1.WriterResult) error {
	obj := &orgsyncv1.DesiredObject{Target: result.GetTarget(), Key: result.GetKey(), Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: result.GetKey()}}}
	path, err := subject.ObjectPath(obj)
	if err != nil {
		return nil
	}
	published := a.deps.Published.Last(path)
	revision, _ := a.deps.Published.Revision(path)
	if published.GetUser() == nil || published.GetTombstone() || revision != result.GetRevision() {
		return nil
	}
	user := published.GetUser()
	var value string
	switch result.GetProperty() {
	case identifier.PropertyUPN:
		value = user.GetUserPrincipalName()
	case identifier.PropertyMailNickname:
		value = user.GetMailNickname()
	case identifier.PropertySAMAccountName:
		value = user.GetAttributes()[identifier.PropertySAMAccountName]
	}
	now := a.deps.Clock.Now()
	changes, learnt := a.deps.Model.MarkHeld(result.GetTarget(), result.GetKey(), result.GetProperty(), value, now)
	if !learnt {
		return nil
	}
	// The value itself is personal data: the log names the worker and the property only.
	a.deps.Logger.InfoContext(ctx, "identifier held by an account orgsync does not manage; taking the next candidate",
		"worker_id", result.GetKey(), "target", subject.TargetName(result.GetTarget()), "property", result.GetProperty(), "revision", result.GetRevision())
	// emit records the held value and the new assignment before it publishes.
	return a.emit(ctx, changes, &orgsyncv1.Cause{Reason: HeldReason, ComputedAt: timestamppb.New(now)})
}
