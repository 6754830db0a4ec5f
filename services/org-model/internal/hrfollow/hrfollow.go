// Package hrfollow reads stream HR: an ordered consumer over hr.> from a given sequence, each
// event decoded and handed on with its stream sequence. What an event does is its caller's
// business (org-model hands it to the engine).
package hrfollow

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Follower reads stream HR. Follow blocks; its caller owns the goroutine that runs it.
type Follower struct {
	js     jetstream.JetStream
	logger *slog.Logger
}

// New returns a Follower of stream HR on js.
func New(js jetstream.JetStream, logger *slog.Logger) *Follower {
	return &Follower{js: js, logger: logger}
}

// Bounds returns stream HR's first and last sequences now.
func (f *Follower) Bounds(ctx context.Context) (first, last uint64, err error) {
	hr, err := f.js.Stream(ctx, stream.HR)
	if err != nil {
		return 0, 0, fmt.Errorf("stream HR: %w", err)
	}
	state := hr.CachedInfo().State
	return state.FirstSeq, state.LastSeq, nil
}

// Follow hands every HR event from startSeq on (0: from the first) to apply, in stream order,
// until ctx ends. Neither a message that cannot be decoded (it cannot become valid later) nor an
// error from apply stops it: both are logged and the event skipped, as the ordered consumer does
// not redeliver.
func (f *Follower) Follow(ctx context.Context, startSeq uint64, apply func(ctx context.Context, event *orgsyncv1.HREvent, sequence uint64) error) error {
	consumerConfig := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"hr.>"}}
	if startSeq > 0 {
		consumerConfig.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		consumerConfig.OptStartSeq = startSeq
	}
	consumer, err := f.js.OrderedConsumer(ctx, stream.HR, consumerConfig)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped while starting to read: a stop, not a failure (as once reading).
			return nil
		}
		return fmt.Errorf("consuming HR: %w", err)
	}
	return stream.Consume(ctx, consumer, func(ctx context.Context, msg jetstream.Msg) error {
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		var event orgsyncv1.HREvent
		if err := stream.Decode(msg, &event); err != nil {
			return err
		}
		return apply(ctx, &event, meta.Sequence.Stream)
	}, stream.ConsumeOptions{NoAck: true, OnError: func(msg jetstream.Msg, err error) {
		f.logger.Error("HR event not applied", "subject", msg.Subject(), "error", err)
	}})
}
