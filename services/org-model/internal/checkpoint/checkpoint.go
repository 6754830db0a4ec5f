// Package checkpoint saves and restores the model's state for a bounded replay of stream HR.
//
// Bounded replay. org-model rebuilds the organisation from stream HR; after years of daily full
// exports a replay from the first event takes long and needs the whole history kept. So it writes
// a checkpoint of the model (model.Checkpoint: timelines, units, open snapshots, identifiers, and
// the HR sequence they cover) to an object store now and then, and at start restores the newest
// one and replays only the events after it. HR_RETENTION can then be finite: a worker HR has not
// mentioned for longer than the retention is in the checkpoint. A checkpoint that cannot be read
// or used is logged and ignored: the replay then starts from the first event HR still has.
package checkpoint

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/config"
	"github.com/orgsync/orgsync/services/org-model/internal/engine"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

// Bucket is the JetStream object store that keeps org-model's checkpoint.
const Bucket = "ORGMODEL_CHECKPOINT"

// Object is the checkpoint's name in the bucket; each write replaces the previous one.
const Object = "model"

// Model is the state a checkpoint is taken of and restored into.
type Model interface {
	Checkpoint(hrSequence uint64, now time.Time) *orgsyncv1.ModelCheckpoint
	Restore(cp *orgsyncv1.ModelCheckpoint) error
}

var _ Model = (*model.Model)(nil)

// Engine runs a function on the goroutine that owns the model.
type Engine interface {
	Do(ctx context.Context, fn func(ctx context.Context) error) error
}

var _ Engine = (*engine.Engine)(nil)

// Clock says what time it is.
type Clock interface{ Now() time.Time }

// Checkpointer writes the model's checkpoint now and then and restores it at start. Restore and
// NoteApplied run on the engine's goroutine (or before the engine applies anything); Run is one
// goroutine, owned by its caller, that takes the model's state on the engine.
type Checkpointer struct {
	// store is the object store of the checkpoint; nil turns checkpoints off.
	store  jetstream.ObjectStore
	cfg    config.Checkpoint
	model  Model
	engine Engine
	clock  Clock
	logger *slog.Logger
	// due asks Run for a checkpoint. appliedSeq and checkpointedSeq are the HR sequences last
	// applied and last saved; the engine's goroutine owns them.
	due             chan struct{}
	appliedSeq      uint64
	checkpointedSeq uint64
}

// New returns a Checkpointer over store (nil: checkpoints off).
func New(store jetstream.ObjectStore, cfg config.Checkpoint, model Model, engine Engine, clock Clock, logger *slog.Logger) *Checkpointer {
	return &Checkpointer{store: store, cfg: cfg, model: model, engine: engine, clock: clock, logger: logger, due: make(chan struct{}, 1)}
}

// Encode is the stored form of a checkpoint: gzip of the protobuf.
func Encode(cp *orgsyncv1.ModelCheckpoint) ([]byte, error) {
	data, err := proto.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("encoding the checkpoint: %w", err)
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("compressing the checkpoint: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing the checkpoint: %w", err)
	}
	return b.Bytes(), nil
}

// Decode reads a checkpoint in its stored form.
func Decode(r io.Reader) (*orgsyncv1.ModelCheckpoint, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("decompressing the checkpoint: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompressing the checkpoint: %w", err)
	}
	var cp orgsyncv1.ModelCheckpoint
	if err := proto.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("decoding the checkpoint: %w", err)
	}
	return &cp, nil
}

// Restore loads the newest checkpoint into the model and returns the HR sequence it
// covers; 0 when there is none or it cannot be used (then the model is untouched and HR is
// replayed in full). firstSeq and lastSeq are stream HR's first and last sequences now.
func (s *Checkpointer) Restore(ctx context.Context, firstSeq, lastSeq uint64) uint64 {
	if s.store == nil {
		return 0
	}
	started := time.Now()
	obj, err := s.store.Get(ctx, Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		s.logger.InfoContext(ctx, "no checkpoint yet: replaying HR from the start")
		return 0
	}
	if err != nil {
		s.logger.WarnContext(ctx, "checkpoint unreadable: replaying HR from the start", "bucket", Bucket, "error", err)
		return 0
	}
	cp, err := Decode(obj)
	_ = obj.Close()
	if err != nil {
		s.logger.WarnContext(ctx, "checkpoint unreadable: replaying HR from the start", "bucket", Bucket, "error", err)
		return 0
	}
	if cp.GetHrSequence() > lastSeq {
		s.logger.WarnContext(ctx, "checkpoint is ahead of stream HR (was the stream recreated?): replaying HR from the start",
			"checkpoint_sequence", cp.GetHrSequence(), "hr_last_sequence", lastSeq)
		return 0
	}
	if err := s.model.Restore(cp); err != nil {
		s.logger.WarnContext(ctx, "checkpoint not used: replaying HR from the start", "error", err)
		return 0
	}
	if firstSeq > cp.GetHrSequence()+1 {
		// Events between the checkpoint and the oldest one HR keeps have expired: what they
		// changed is lost until HR sends it again. The checkpoint is still the best start.
		s.logger.WarnContext(ctx, "HR events after the checkpoint have expired; raise HR_RETENTION or checkpoint more often",
			"checkpoint_sequence", cp.GetHrSequence(), "hr_first_sequence", firstSeq)
	}
	s.checkpointedSeq = cp.GetHrSequence()
	s.appliedSeq = cp.GetHrSequence()
	s.logger.InfoContext(ctx, "restored the checkpoint", "hr_sequence", cp.GetHrSequence(), "workers", len(cp.GetWorkers()),
		"written_at", cp.GetWrittenAt().AsTime(), "took", time.Since(started))
	return cp.GetHrSequence()
}

// NoteApplied counts an applied HR event and asks for a checkpoint once enough have come, on the
// engine's goroutine.
func (s *Checkpointer) NoteApplied(sequence uint64) {
	s.appliedSeq = sequence
	if s.store == nil || s.cfg.Events <= 0 {
		return
	}
	if sequence-s.checkpointedSeq >= uint64(s.cfg.Events) {
		select {
		case s.due <- struct{}{}:
		default:
		}
	}
}

// Run writes a checkpoint when asked (enough events) or when the interval has passed
// with events since the last one, until ctx ends. The model's state is taken on the engine;
// encoding and storing happen outside it, so HR events go on being applied meanwhile.
func (s *Checkpointer) Run(ctx context.Context) error {
	if s.store == nil || s.cfg.Events <= 0 {
		return nil
	}
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.due:
		case <-ticker.C:
		}
		if err := s.write(ctx); err != nil && ctx.Err() == nil {
			// The next one may succeed; meanwhile a restart replays a little more.
			s.logger.WarnContext(ctx, "checkpoint not written", "bucket", Bucket, "error", err)
		}
	}
}

// write stores the model's state if HR events were applied since the last checkpoint.
func (s *Checkpointer) write(ctx context.Context) error {
	var sequence uint64
	var cp *orgsyncv1.ModelCheckpoint
	if err := s.engine.Do(ctx, func(context.Context) error {
		sequence = s.appliedSeq
		if sequence > s.checkpointedSeq {
			cp = s.model.Checkpoint(sequence, s.clock.Now())
		}
		return nil
	}); err != nil || cp == nil {
		return err
	}

	started := time.Now()
	data, err := Encode(cp)
	if err != nil {
		return err
	}
	if _, err := s.store.PutBytes(ctx, Object, data); err != nil {
		return fmt.Errorf("storing the checkpoint in %s: %w", Bucket, err)
	}
	if err := s.engine.Do(ctx, func(context.Context) error {
		s.checkpointedSeq = max(s.checkpointedSeq, sequence)
		return nil
	}); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "checkpoint written", "hr_sequence", sequence, "workers", len(cp.GetWorkers()), "bytes", len(data), "took", time.Since(started))
	return nil
}

// OpenStore creates or updates the checkpoint's object store on js, with the streams' replicas
// and storage.
func OpenStore(ctx context.Context, js jetstream.JetStream, cfg stream.Config) (jetstream.ObjectStore, error) {
	store, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "org-model: the model's state at an HR sequence, for a bounded replay at start",
		Replicas:    max(cfg.Replicas, 1),
		Storage:     cfg.Storage,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", Bucket, err)
	}
	return store, nil
}
