package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

const (
	instrumentationName = "github.com/orgsync/orgsync/pkg/stream"
	// TypeHeader names the protobuf message type of a message's payload.
	TypeHeader = "Orgsync-Type"
)

// Publisher publishes protobuf messages to JetStream, each under a producer span whose context
// travels in the message headers. It is safe for concurrent use.
type Publisher struct {
	js         jetstream.JetStream
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// NewPublisher returns a Publisher over js using the global tracer provider and propagator.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{
		js:         js,
		tracer:     otel.Tracer(instrumentationName),
		propagator: otel.GetTextMapPropagator(),
	}
}

// Publish stores m under subject and returns once JetStream has acknowledged it. msgID becomes the
// Nats-Msg-Id, so publishing the same id twice within the stream's duplicate window stores it once
// (the returned ack then says Duplicate).
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error) {
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	ctx, span := p.tracer.Start(ctx, "send "+subjectPattern(subject),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(subject),
			semconv.MessagingMessageID(msgID),
			semconv.MessagingMessageBodySize(len(data)),
		))
	defer span.End()

	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(TypeHeader, string(m.ProtoReflect().Descriptor().FullName()))
	p.propagator.Inject(ctx, HeaderCarrier(msg.Header))

	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish not acknowledged")
		return nil, fmt.Errorf("publishing %s: %w", subject, err)
	}
	span.SetAttributes(
		attribute.Int64("messaging.nats.stream.sequence", int64(ack.Sequence)),
		attribute.Bool("messaging.nats.duplicate", ack.Duplicate),
	)
	return ack, nil
}

// subjectPattern keeps the first three tokens of a subject so span names stay low-cardinality:
// "dir.entra.user.E1001" names its span "send dir.entra.user".
func subjectPattern(subject string) string {
	dots := 0
	for i := 0; i < len(subject); i++ {
		if subject[i] == '.' {
			dots++
			if dots == 3 {
				return subject[:i]
			}
		}
	}
	return subject
}

// StartProcessSpan starts the consumer span for one received message: a child of the producer's
// span carried in the headers, and linked to it, so the trace continues across the stream.
func StartProcessSpan(ctx context.Context, msg jetstream.Msg) (context.Context, trace.Span) {
	producerCtx := otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(msg.Headers()))
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKey.String("nats"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(msg.Subject()),
		semconv.MessagingMessageBodySize(len(msg.Data())),
	}
	if meta, err := msg.Metadata(); err == nil {
		attrs = append(attrs,
			semconv.MessagingConsumerGroupName(meta.Consumer),
			attribute.Int64("messaging.nats.stream.sequence", int64(meta.Sequence.Stream)),
			attribute.Int64("messaging.nats.delivery_count", int64(meta.NumDelivered)),
		)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if sc := trace.SpanContextFromContext(producerCtx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return otel.Tracer(instrumentationName).Start(producerCtx, "process "+subjectPattern(msg.Subject()), opts...)
}

// LinkMessages returns span links to the producer spans of msgs, for a span that serves a batch.
func LinkMessages(ctx context.Context, msgs []jetstream.Msg) []trace.Link {
	links := make([]trace.Link, 0, len(msgs))
	for _, msg := range msgs {
		sc := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(msg.Headers())))
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links
}

// RetryError asks Consume to redeliver the message after a delay instead of acknowledging it.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string { return fmt.Sprintf("retry in %v: %v", e.After, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// Retry wraps err so that Consume redelivers the message after the delay.
func Retry(after time.Duration, err error) error { return &RetryError{After: after, Err: err} }

// ErrPermanent marks an error after which redelivering the message cannot help: Consume terminates
// the message instead of redelivering it. Wrap it: fmt.Errorf("…: %w", stream.ErrPermanent).
var ErrPermanent = errors.New("permanent")

// Handler processes one message. The context carries the message's process span.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// ConsumeOptions tune Consume.
type ConsumeOptions struct {
	// NoAck is for consumers with AckNone (such as ordered consumers): nothing is acknowledged.
	NoAck bool
	// DefaultRetry is the redelivery delay after a plain error; default 1s.
	DefaultRetry time.Duration
	// OnError observes every handler error, e.g. to log it.
	OnError func(msg jetstream.Msg, err error)
	// InProgressEvery, for ConsumeBatch, tells JetStream every so often that the batch being
	// handled is still being worked on, so that a batch taking longer than the consumer's AckWait
	// is not delivered again meanwhile; a third of the AckWait suits. Zero: never. With it, the
	// AckWait can be short, and a message in the hands of a process that died is delivered again
	// soon.
	InProgressEvery time.Duration
}

// Consume feeds the consumer's messages to handle one at a time, in delivery order, until ctx is
// done; it blocks, and the caller owns the goroutine it runs on. A nil error acknowledges the
// message; a RetryError or a plain error asks for redelivery after a delay; ErrPermanent terminates
// it. Consume returns nil when ctx ends, or the error that stopped the subscription.
func Consume(ctx context.Context, consumer jetstream.Consumer, handle Handler, opts ConsumeOptions) error {
	if opts.DefaultRetry <= 0 {
		opts.DefaultRetry = time.Second
	}
	it, err := consumer.Messages()
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				continue
			}
			return fmt.Errorf("receiving: %w", err)
		}
		processMessage(ctx, msg, handle, opts)
	}
}

func processMessage(ctx context.Context, msg jetstream.Msg, handle Handler, opts ConsumeOptions) {
	spanCtx, span := StartProcessSpan(ctx, msg)
	defer span.End()
	countRedelivery(spanCtx, msg)
	err := handle(spanCtx, msg)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "message not processed")
		if opts.OnError != nil {
			opts.OnError(msg, err)
		}
	}
	settle(msg, err, opts)
}

// settle acknowledges, redelivers or terminates msg according to the handler's err.
// ErrHeld is what a BatchHandler returns for a message it keeps to settle later itself, with
// Settle: ConsumeBatch leaves the message unacknowledged (JetStream delivers it again after the
// consumer's AckWait if it is never settled).
var ErrHeld = errors.New("held by the handler, to be settled later")

// Settle acknowledges msg when err is nil, terminates it for ErrPermanent, and asks for its
// redelivery otherwise (after a RetryError's delay, else after a second): what ConsumeBatch does
// with a handler's answer, for a message the handler held.
func Settle(msg jetstream.Msg, err error) {
	settle(msg, err, ConsumeOptions{DefaultRetry: time.Second})
}

func settle(msg jetstream.Msg, err error, opts ConsumeOptions) {
	if opts.NoAck {
		return
	}
	var retry *RetryError
	switch {
	case err == nil:
		err = msg.Ack()
	case errors.Is(err, ErrPermanent):
		err = msg.Term()
	case errors.As(err, &retry):
		err = msg.NakWithDelay(retry.After)
	default:
		err = msg.NakWithDelay(opts.DefaultRetry)
	}
	if err != nil && opts.OnError != nil {
		opts.OnError(msg, fmt.Errorf("acknowledging: %w", err))
	}
}

// Decode unmarshals msg's payload into m.
func Decode(msg jetstream.Msg, m proto.Message) error {
	if err := proto.Unmarshal(msg.Data(), m); err != nil {
		return fmt.Errorf("decoding %s as %s: %w: %w", msg.Subject(), m.ProtoReflect().Descriptor().FullName(), err, ErrPermanent)
	}
	return nil
}

// Attempt is how many times msg has been delivered, counting this delivery: 1 on the first.
func Attempt(msg jetstream.Msg) int {
	if meta, err := msg.Metadata(); err == nil {
		return int(meta.NumDelivered)
	}
	return 1
}
