package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// BatchHandler processes messages together and returns one error per message, in order: nil
// acknowledges it, a RetryError or a plain error asks for its redelivery, ErrPermanent terminates
// it. The context carries a span linked to every message's producer span.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) []error

// ConsumeBatch feeds the consumer's messages to handle in batches of at most maxBatch, until ctx
// is done; it blocks, and the caller owns its goroutine. It waits for one message, then takes
// whatever else is already waiting, so a quiet stream is served at once and a busy one in full
// batches.
func ConsumeBatch(ctx context.Context, consumer jetstream.Consumer, maxBatch int, handle BatchHandler, opts ConsumeOptions) error {
	if opts.DefaultRetry <= 0 {
		opts.DefaultRetry = time.Second
	}
	tracer := otel.Tracer(instrumentationName)
	for ctx.Err() == nil {
		msgs, err := fetch(ctx, consumer, maxBatch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(msgs) == 0 {
			continue
		}
		batchCtx, span := tracer.Start(ctx, "process batch",
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(LinkMessages(ctx, msgs)...),
			trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(msgs))))
		for _, msg := range msgs {
			countRedelivery(batchCtx, msg)
		}
		stopProgress := reportProgress(batchCtx, msgs, opts.InProgressEvery)
		errs := handle(batchCtx, msgs)
		stopProgress()
		span.End()
		for i, msg := range msgs {
			var msgErr error
			if i < len(errs) {
				msgErr = errs[i]
			}
			if errors.Is(msgErr, ErrHeld) {
				continue // the handler settles it
			}
			if msgErr != nil && opts.OnError != nil {
				opts.OnError(msg, msgErr)
			}
			settle(msg, msgErr, opts)
		}
	}
	return nil
}

// reportProgress tells JetStream every interval that msgs are still being worked on, until the
// returned function is called (it returns once the reporting has stopped).
func reportProgress(ctx context.Context, msgs []jetstream.Msg, every time.Duration) func() {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
				for _, msg := range msgs {
					_ = msg.InProgress() // a failed report only risks an early redelivery
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// fetch waits up to a second for the first message, then takes what else is waiting.
func fetch(ctx context.Context, consumer jetstream.Consumer, maxBatch int) ([]jetstream.Msg, error) {
	first, err := consumer.Fetch(1, jetstream.FetchContext(withTimeout(ctx, time.Second)))
	if err != nil {
		return nil, fmt.Errorf("fetching: %w", err)
	}
	var msgs []jetstream.Msg
	for msg := range first.Messages() {
		msgs = append(msgs, msg)
	}
	if err := first.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("fetching: %w", err)
	}
	if len(msgs) == 0 || maxBatch <= 1 {
		return msgs, nil
	}
	rest, err := consumer.FetchNoWait(maxBatch - 1)
	if err != nil {
		return msgs, nil
	}
	for msg := range rest.Messages() {
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// withTimeout bounds ctx without leaking a timer: the returned context ends with ctx or after d.
func withTimeout(ctx context.Context, d time.Duration) context.Context {
	timeoutCtx, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(timeoutCtx, cancel)
	return timeoutCtx
}
