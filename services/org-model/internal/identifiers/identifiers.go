// Package identifiers keeps the identifiers org-model assigned to workers, and the values
// accounts it does not manage hold, in a JetStream key-value bucket, so that a restart, a policy
// change or trimmed HR history renames no one.
package identifiers

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

// Bucket is the JetStream key-value bucket where org-model records the identifiers it assigned
// (orgsync.v1.RecordedIdentifiers, key "worker.<target>.<base64url worker id>") and the values
// foreign accounts hold (orgsync.v1.HeldIdentifier, key
// "held.<target>.<base64url property>.<base64url value>").
const Bucket = "ORGMODEL_IDENTIFIERS"

// Store reads and writes the bucket. It is used from one goroutine at a time (the engine's, or
// the HR follower's before the engine applies anything).
type Store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	logger *slog.Logger
}

// Open creates or updates the bucket and returns its store.
func Open(ctx context.Context, js jetstream.JetStream, cfg stream.Config, logger *slog.Logger) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "org-model: identifiers assigned to workers per target, and values held by accounts orgsync does not manage",
		Replicas:    max(cfg.Replicas, 1),
		Storage:     cfg.Storage,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	return &Store{js: js, kv: kv, logger: logger}, nil
}

// AssignmentKey is the key of a worker's recorded identifiers on a target.
func AssignmentKey(target orgsyncv1.Target, workerID string) string {
	return "worker." + subject.TargetName(target) + "." + base64.RawURLEncoding.EncodeToString([]byte(workerID))
}

// HeldKey is the key of a value a foreign account holds.
func HeldKey(h model.HeldIdentifier) string {
	return "held." + subject.TargetName(h.Target) + "." + base64.RawURLEncoding.EncodeToString([]byte(h.Property)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(h.Value))
}

// Load reads every recorded assignment and held value; unreadable counts the records that could
// not be decoded (those workers get identifiers from the candidates again).
func (s *Store) Load(ctx context.Context) (assignments []model.Assignment, held []model.HeldIdentifier, unreadable int, err error) {
	watcher, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading %s: %w", Bucket, err)
	}
	defer func() { _ = watcher.Stop() }()
loop:
	for {
		select {
		case <-ctx.Done():
			return nil, nil, 0, ctx.Err()
		case entry, ok := <-watcher.Updates():
			if !ok {
				return nil, nil, 0, fmt.Errorf("reading %s: the watcher stopped", Bucket)
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
	return assignments, held, unreadable, nil
}

// Record writes assignments and held values, before anything that uses them is published: a UPN
// on DIRECTORY is always one the bucket has. It retries until the bucket acknowledges or ctx
// ends, blocking meanwhile.
func (s *Store) Record(ctx context.Context, assignments []model.Assignment, held []model.HeldIdentifier, now time.Time) error {
	if len(assignments) == 0 && len(held) == 0 {
		return nil
	}
	recordedAt := timestamppb.New(now)
	records := make(map[string][]byte, len(assignments)+len(held))
	for _, a := range assignments {
		data, err := proto.Marshal(&orgsyncv1.RecordedIdentifiers{WorkerId: a.WorkerID, Target: a.Target, UserPrincipalName: a.UserPrincipalName,
			MailNickname: a.MailNickname, SamAccountName: a.SAMAccountName, NameHash: a.NameHash, RecordedAt: recordedAt})
		if err != nil {
			return fmt.Errorf("encoding recorded identifiers: %w", err)
		}
		records[AssignmentKey(a.Target, a.WorkerID)] = data
	}
	for _, h := range held {
		data, err := proto.Marshal(&orgsyncv1.HeldIdentifier{Target: h.Target, Property: h.Property, Value: h.Value, RecordedAt: recordedAt})
		if err != nil {
			return fmt.Errorf("encoding a held identifier: %w", err)
		}
		records[HeldKey(h)] = data
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.putAll(ctx, records)
		if err == nil {
			return nil
		}
		s.logger.WarnContext(ctx, "identifiers not recorded; retrying before publishing", "bucket", Bucket, "left", len(records), "error", err, "retry_in", backoff)
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
func (s *Store) putAll(ctx context.Context, records map[string][]byte) error {
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
		future, err := s.js.PublishAsync("$KV."+Bucket+"."+key, data)
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
		return fmt.Errorf("recording identifiers in %s: %w", Bucket, errors.Join(errs[0], fmt.Errorf("%d writes failed", len(errs))))
	}
	return nil
}
