package service

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
	"github.com/orgsync/orgsync/services/org-model/internal/identifiers"
)

// IdentifiersBucket is the JetStream key-value bucket of the identifiers org-model assigned
// and the values foreign accounts hold (identifiers.Bucket).
const IdentifiersBucket = identifiers.Bucket

// heldReason is the cause of a desired user republished with its next identifier candidate.
const heldReason = "identifier held in the directory by an account orgsync does not manage"

// loadIdentifiers gives the model the recorded identifiers before the HR replay, then adopts
// the identifiers of users already on DIRECTORY that have no record (written before recording
// existed), so that neither a restart nor an upgrade renames anyone.
func (s *Service) loadIdentifiers(ctx context.Context) error {
	assignments, held, unreadable, err := s.identifiers.Load(ctx)
	if err != nil {
		return err
	}
	dropped := s.model.RestoreIdentifiers(assignments, held)
	adopted := 0
	for _, obj := range s.publisher.Live() {
		if s.model.AdoptPublished(obj) {
			adopted++
		}
	}
	if unreadable > 0 || dropped > 0 {
		// Those workers get identifiers from the candidates again when HR describes them.
		s.logger.WarnContext(ctx, "recorded identifiers not restored", "bucket", identifiers.Bucket, "unreadable", unreadable, "invalid_or_taken", dropped)
	}
	s.logger.InfoContext(ctx, "identifiers restored", "assignments", len(assignments)-dropped, "held", len(held), "adopted_from_directory", adopted)
	return nil
}

// recordIdentifiers writes the assignments and held values the model made since the last call,
// before anything that uses them is published: a UPN on DIRECTORY is always one the bucket has.
// It retries until the bucket acknowledges or ctx ends, like publish.
func (s *Service) recordIdentifiers(ctx context.Context) error {
	assignments, held := s.model.TakeUnrecorded()
	return s.identifiers.Record(ctx, assignments, held, s.clock.Now())
}

// noteResult reacts to a writer's result: a user create refused because an account orgsync does
// not manage holds the worker's UPN, mailNickname or sAMAccountName marks that value as held
// and gives the worker its next candidate. Results read before the HR replay is done wait for
// it (the identifiers they concern are not known yet).
func (s *Service) noteResult(ctx context.Context, result *orgsyncv1.WriterResult) error {
	if !isHeldConflict(result) {
		return nil
	}
	return s.engine.Do(ctx, func(ctx context.Context) error {
		if !s.caughtUp.Load() {
			s.heldConflicts = append(s.heldConflicts, result)
			return nil
		}
		return s.takeNextCandidate(ctx, result)
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
func (s *Service) takeHeldConflicts(ctx context.Context) error {
	conflicts := s.heldConflicts
	s.heldConflicts = nil
	for _, result := range conflicts {
		if err := s.takeNextCandidate(ctx, result); err != nil {
			return err
		}
	}
	return nil
}

// takeNextCandidate applies one conflict result. Only a result about the revision published
// now counts: an older one is about identifiers already replaced. It runs on the engine's goroutine.
func (s *Service) takeNextCandidate(ctx context.Context, result *orgsyncv1.WriterResult) error {
	obj := &orgsyncv1.DesiredObject{Target: result.GetTarget(), Key: result.GetKey(), Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: result.GetKey()}}}
	path, err := subject.ObjectPath(obj)
	if err != nil {
		return nil
	}
	published := s.publisher.Last(path)
	revision, _ := s.publisher.Revision(path)
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
	now := s.clock.Now()
	changes, learnt := s.model.MarkHeld(result.GetTarget(), result.GetKey(), result.GetProperty(), value, now)
	if !learnt {
		return nil
	}
	// The value itself is personal data: the log names the worker and the property only.
	s.logger.InfoContext(ctx, "identifier held by an account orgsync does not manage; taking the next candidate",
		"worker_id", result.GetKey(), "target", subject.TargetName(result.GetTarget()), "property", result.GetProperty(), "revision", result.GetRevision())
	// emit records the held value and the new assignment before it publishes.
	return s.emit(ctx, changes, &orgsyncv1.Cause{Reason: heldReason, ComputedAt: timestamppb.New(now)})
}
