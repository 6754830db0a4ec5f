package service

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

// IdentifiersBucket is the JetStream key-value bucket where org-model records the identifiers
// it assigned (orgsync.v1.RecordedIdentifiers, key "worker.<target>.<base64url worker id>") and
// the values foreign accounts hold (orgsync.v1.HeldIdentifier, key
// "held.<target>.<base64url property>.<base64url value>").
const IdentifiersBucket = "ORGMODEL_IDENTIFIERS"

// heldReason is the cause of a desired user republished with its next identifier candidate.
const heldReason = "identifier held in the directory by an account orgsync does not manage"

func openIdentifiers(ctx context.Context, js jetstream.JetStream, cfg stream.Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      IdentifiersBucket,
		Description: "org-model: identifiers assigned to workers per target, and values held by accounts orgsync does not manage",
		Replicas:    max(cfg.Replicas, 1),
		Storage:     cfg.Storage,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", IdentifiersBucket, err)
	}
	return kv, nil
}

func assignmentKey(target orgsyncv1.Target, workerID string) string {
	return "worker." + subject.TargetName(target) + "." + base64.RawURLEncoding.EncodeToString([]byte(workerID))
}

func heldKey(h model.HeldIdentifier) string {
	return "held." + subject.TargetName(h.Target) + "." + base64.RawURLEncoding.EncodeToString([]byte(h.Property)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(h.Value))
}

// loadIdentifiers gives the model the recorded identifiers before the HR replay, then adopts
// the identifiers of users already on DIRECTORY that have no record (written before recording
// existed), so that neither a restart nor an upgrade renames anyone.
func (s *Service) loadIdentifiers(ctx context.Context) error {
	watcher, err := s.identifiers.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("reading %s: %w", IdentifiersBucket, err)
	}
	defer func() { _ = watcher.Stop() }()
	var assignments []model.Assignment
	var held []model.HeldIdentifier
	unreadable := 0
loop:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case entry, ok := <-watcher.Updates():
			if !ok {
				return fmt.Errorf("reading %s: the watcher stopped", IdentifiersBucket)
			}
			if entry == nil {
				break loop // every current value has been delivered
			}
			switch {
			case strings.HasPrefix(entry.Key(), "worker."):
				var rec orgsyncv1.RecordedIdentifiers
				if err := proto.Unmarshal(entry.Value(), &rec); err != nil {
					unreadable++
					continue
				}
				assignments = append(assignments, model.Assignment{WorkerID: rec.GetWorkerId(), Target: rec.GetTarget(),
					UserPrincipalName: rec.GetUserPrincipalName(), MailNickname: rec.GetMailNickname(),
					SAMAccountName: rec.GetSamAccountName(), NameHash: rec.GetNameHash()})
			case strings.HasPrefix(entry.Key(), "held."):
				var rec orgsyncv1.HeldIdentifier
				if err := proto.Unmarshal(entry.Value(), &rec); err != nil {
					unreadable++
					continue
				}
				held = append(held, model.HeldIdentifier{Target: rec.GetTarget(), Property: rec.GetProperty(), Value: rec.GetValue()})
			}
		}
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
		s.logger.WarnContext(ctx, "recorded identifiers not restored", "bucket", IdentifiersBucket, "unreadable", unreadable, "invalid_or_taken", dropped)
	}
	s.logger.InfoContext(ctx, "identifiers restored", "assignments", len(assignments)-dropped, "held", len(held), "adopted_from_directory", adopted)
	return nil
}

// recordIdentifiers writes the assignments and held values the model made since the last call,
// before anything that uses them is published: a UPN on DIRECTORY is always one the bucket has.
// It retries until the bucket acknowledges or ctx ends, like publish.
func (s *Service) recordIdentifiers(ctx context.Context) error {
	assignments, held := s.model.TakeUnrecorded()
	if len(assignments) == 0 && len(held) == 0 {
		return nil
	}
	now := timestamppb.New(s.clock.Now())
	records := make(map[string][]byte, len(assignments)+len(held))
	for _, a := range assignments {
		data, err := proto.Marshal(&orgsyncv1.RecordedIdentifiers{WorkerId: a.WorkerID, Target: a.Target, UserPrincipalName: a.UserPrincipalName,
			MailNickname: a.MailNickname, SamAccountName: a.SAMAccountName, NameHash: a.NameHash, RecordedAt: now})
		if err != nil {
			return fmt.Errorf("encoding recorded identifiers: %w", err)
		}
		records[assignmentKey(a.Target, a.WorkerID)] = data
	}
	for _, h := range held {
		data, err := proto.Marshal(&orgsyncv1.HeldIdentifier{Target: h.Target, Property: h.Property, Value: h.Value, RecordedAt: now})
		if err != nil {
			return fmt.Errorf("encoding a held identifier: %w", err)
		}
		records[heldKey(h)] = data
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.putAll(ctx, records)
		if err == nil {
			return nil
		}
		s.logger.WarnContext(ctx, "identifiers not recorded; retrying before publishing", "bucket", IdentifiersBucket, "left", len(records), "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// putAll writes records to the bucket, many in flight at once (the first start records every
// worker), and removes from records those acknowledged.
func (s *Service) putAll(ctx context.Context, records map[string][]byte) error {
	const inFlight = 512
	type pending struct {
		key    string
		future jetstream.PubAckFuture
	}
	var errs []error
	wait := func(batch []pending) {
		for _, p := range batch {
			select {
			case <-p.future.Ok():
				delete(records, p.key)
			case err := <-p.future.Err():
				errs = append(errs, err)
			case <-ctx.Done():
				errs = append(errs, ctx.Err())
				return
			}
		}
	}
	batch := make([]pending, 0, inFlight)
	for key, data := range records {
		// A key-value put is a publish to the bucket's subject.
		future, err := s.js.PublishAsync("$KV."+IdentifiersBucket+"."+key, data)
		if err != nil {
			errs = append(errs, err)
			break
		}
		batch = append(batch, pending{key: key, future: future})
		if len(batch) == inFlight {
			wait(batch)
			batch = batch[:0]
		}
	}
	wait(batch)
	if len(errs) > 0 {
		return fmt.Errorf("recording identifiers in %s: %w", IdentifiersBucket, errors.Join(errs[0], fmt.Errorf("%d writes failed", len(errs))))
	}
	return nil
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
