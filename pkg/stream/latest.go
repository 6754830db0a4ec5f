package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadLatest calls fn with the newest message of every subject on streamName matching filter, in
// stream order, and returns once it has seen them all. On a compacted stream (DIRECTORY, RESULTS)
// that is the whole current state.
func ReadLatest(ctx context.Context, js jetstream.JetStream, streamName, filter string, fn func(jetstream.Msg) error) error {
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return fmt.Errorf("stream %s: %w", streamName, err)
	}
	consumer, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", streamName, filter, err)
	}
	defer func() { _ = s.DeleteConsumer(context.WithoutCancel(ctx), consumer.CachedInfo().Name) }()
	if consumer.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := consumer.Messages()
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", streamName, filter, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", streamName, filter, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", streamName, filter, err)
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}
