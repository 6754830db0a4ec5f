package service

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Bounded replay. org-model rebuilds the organisation from stream HR; after years of daily full
// exports a replay from the first event takes long and needs the whole history kept. So it writes
// a checkpoint of the model (model.Checkpoint: timelines, units, open snapshots, identifiers, and
// the HR sequence they cover) to an object store now and then, and at start restores the newest
// one and replays only the events after it. HR_RETENTION can then be finite: a worker HR has not
// mentioned for longer than the retention is in the checkpoint. A checkpoint that cannot be read
// or used is logged and ignored: the replay then starts from the first event HR still has.

// CheckpointBucket is the JetStream object store that keeps org-model's checkpoint.
const CheckpointBucket = "ORGMODEL_CHECKPOINT"

// checkpointObject is the checkpoint's name in the bucket; each write replaces the previous one.
const checkpointObject = "model"

// encodeCheckpoint is the stored form: gzip of the protobuf.
func encodeCheckpoint(cp *orgsyncv1.ModelCheckpoint) ([]byte, error) {
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

func decodeCheckpoint(r io.Reader) (*orgsyncv1.ModelCheckpoint, error) {
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

// restoreCheckpoint loads the newest checkpoint into the model and returns the HR sequence it
// covers; 0 when there is none or it cannot be used (then the model is untouched and HR is
// replayed in full). lastSeq is stream HR's last sequence now.
func (s *Service) restoreCheckpoint(ctx context.Context, firstSeq, lastSeq uint64) uint64 {
	if s.checkpoints == nil {
		return 0
	}
	started := time.Now()
	obj, err := s.checkpoints.Get(ctx, checkpointObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		s.logger.InfoContext(ctx, "no checkpoint yet: replaying HR from the start")
		return 0
	}
	if err != nil {
		s.logger.WarnContext(ctx, "checkpoint unreadable: replaying HR from the start", "bucket", CheckpointBucket, "error", err)
		return 0
	}
	cp, err := decodeCheckpoint(obj)
	_ = obj.Close()
	if err != nil {
		s.logger.WarnContext(ctx, "checkpoint unreadable: replaying HR from the start", "bucket", CheckpointBucket, "error", err)
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
	s.logger.InfoContext(ctx, "restored the checkpoint", "hr_sequence", cp.GetHrSequence(), "workers", len(cp.GetWorkers()),
		"written_at", cp.GetWrittenAt().AsTime(), "took", time.Since(started))
	return cp.GetHrSequence()
}

// noteApplied counts an applied HR event and asks for a checkpoint once enough have come, on the
// engine's goroutine.
func (s *Service) noteApplied(sequence uint64) {
	s.appliedSeq = sequence
	if s.checkpoints == nil || s.checkpointCfg.Events <= 0 {
		return
	}
	if sequence-s.checkpointedSeq >= uint64(s.checkpointCfg.Events) {
		select {
		case s.checkpointDue <- struct{}{}:
		default:
		}
	}
}

// writeCheckpoints writes a checkpoint when asked (enough events) or when the interval has passed
// with events since the last one, until ctx ends. The model's state is taken on the engine;
// encoding and storing happen outside it, so HR events go on being applied meanwhile.
func (s *Service) writeCheckpoints(ctx context.Context) error {
	if s.checkpoints == nil || s.checkpointCfg.Events <= 0 {
		return nil
	}
	ticker := time.NewTicker(s.checkpointCfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.checkpointDue:
		case <-ticker.C:
		}
		if err := s.writeCheckpoint(ctx); err != nil && ctx.Err() == nil {
			// The next one may succeed; meanwhile a restart replays a little more.
			s.logger.WarnContext(ctx, "checkpoint not written", "bucket", CheckpointBucket, "error", err)
		}
	}
}

// writeCheckpoint stores the model's state if HR events were applied since the last checkpoint.
func (s *Service) writeCheckpoint(ctx context.Context) error {
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
	data, err := encodeCheckpoint(cp)
	if err != nil {
		return err
	}
	if _, err := s.checkpoints.PutBytes(ctx, checkpointObject, data); err != nil {
		return fmt.Errorf("storing the checkpoint in %s: %w", CheckpointBucket, err)
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
