package stream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := streamtest.Start(t)
	js := srv.JS
	return js
}

func TestEnsureStreamsIsIdempotentAndCompactsDirectory(t *testing.T) {
	js := connect(t)
	if err := stream.EnsureStreams(t.Context(), js, stream.DefaultConfig()); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}
	pub := stream.NewPublisher(js)
	for revision := uint64(1); revision <= 3; revision++ {
		obj := &orgsyncv1.DesiredObject{Key: "E1", Revision: revision}
		if _, err := pub.Publish(t.Context(), "dir.entra.user.E1", "E1:"+string(rune('0'+revision)), obj); err != nil {
			t.Fatal(err)
		}
	}
	info, err := js.Stream(t.Context(), stream.Directory)
	if err != nil {
		t.Fatal(err)
	}
	state := info.CachedInfo().State
	if state.Msgs != 1 {
		t.Errorf("DIRECTORY keeps %d messages for one subject, want 1", state.Msgs)
	}
	last, err := info.GetLastMsgForSubject(t.Context(), "dir.entra.user.E1")
	if err != nil {
		t.Fatal(err)
	}
	var got orgsyncv1.DesiredObject
	if err := proto.Unmarshal(last.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetRevision() != 3 {
		t.Errorf("newest revision = %d, want 3", got.GetRevision())
	}
}

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	js := connect(t)
	pub := stream.NewPublisher(js)
	event := &orgsyncv1.HREvent{EventId: "wh-1", Source: "workday"}
	first, err := pub.Publish(t.Context(), "hr.workday.worker.E1", "workday:wh-1", event)
	if err != nil {
		t.Fatal(err)
	}
	second, err := pub.Publish(t.Context(), "hr.workday.worker.E1", "workday:wh-1", event)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || first.Sequence != second.Sequence {
		t.Errorf("acks = %+v, %+v; want the second to be a duplicate of the first", first, second)
	}
}

func TestTraceContextCrossesTheStream(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	js := connect(t)
	pub := stream.NewPublisher(js)
	ctx, root := tp.Tracer("test").Start(t.Context(), "webhook")
	want := &orgsyncv1.HREvent{EventId: "wh-2", Source: "workday", Payload: &orgsyncv1.HREvent_Worker{Worker: &orgsyncv1.Worker{WorkerId: "E2"}}}
	if _, err := pub.Publish(ctx, "hr.workday.worker.E2", "workday:wh-2", want); err != nil {
		t.Fatal(err)
	}
	root.End()

	consumer, err := js.OrderedConsumer(t.Context(), stream.HR, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	consumeCtx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got orgsyncv1.HREvent
	var handlerTraceID string
	err = stream.Consume(consumeCtx, consumer, func(ctx context.Context, msg jetstream.Msg) error {
		if err := stream.Decode(msg, &got); err != nil {
			return err
		}
		_, span := tp.Tracer("test").Start(ctx, "apply")
		handlerTraceID = span.SpanContext().TraceID().String()
		span.End()
		cancel()
		return nil
	}, stream.ConsumeOptions{NoAck: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if handlerTraceID != root.SpanContext().TraceID().String() {
		t.Errorf("handler trace %s, want the webhook's %s", handlerTraceID, root.SpanContext().TraceID())
	}
	var process sdktrace.ReadOnlySpan
	for _, s := range exporter.GetSpans().Snapshots() {
		if s.Name() == "process hr.workday.worker" {
			process = s
		}
	}
	if process == nil {
		t.Fatalf("no process span among %d spans", len(exporter.GetSpans()))
	}
	if len(process.Links()) != 1 || process.Links()[0].SpanContext.TraceID() != root.SpanContext().TraceID() {
		t.Errorf("process span links = %v, want one link to the producer", process.Links())
	}
}

func TestConsumeAcksRetriesAndTerminates(t *testing.T) {
	js := connect(t)
	pub := stream.NewPublisher(js)
	for _, key := range []string{"ok", "retry", "bad"} {
		if _, err := pub.Publish(t.Context(), "dir.entra.user."+key, key, &orgsyncv1.DesiredObject{Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := js.CreateOrUpdateConsumer(t.Context(), stream.Directory, jetstream.ConsumerConfig{
		Durable: "test", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	attempts := map[string]int{}
	err = stream.Consume(ctx, consumer, func(_ context.Context, msg jetstream.Msg) error {
		var obj orgsyncv1.DesiredObject
		if err := stream.Decode(msg, &obj); err != nil {
			return err
		}
		attempts[obj.Key]++
		switch {
		case obj.Key == "bad":
			return errors.Join(errors.New("invalid"), stream.ErrPermanent)
		case obj.Key == "retry" && attempts[obj.Key] == 1:
			return stream.Retry(10*time.Millisecond, errors.New("not yet"))
		}
		if attempts["ok"] == 1 && attempts["retry"] == 2 {
			cancel()
		}
		return nil
	}, stream.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"ok": 1, "retry": 2, "bad": 1}, attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

func TestReadLatest(t *testing.T) {
	js := connect(t)
	if err := stream.ReadLatest(t.Context(), js, stream.Results, "results.entra.>", func(jetstream.Msg) error {
		t.Error("called on an empty stream")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pub := stream.NewPublisher(js)
	for i, subject := range []string{"results.entra.user.A", "results.entra.user.B", "results.entra.user.A", "results.ad.user.A"} {
		if _, err := pub.Publish(t.Context(), subject, fmt.Sprint(i), &orgsyncv1.WriterResult{Revision: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]uint64{}
	err := stream.ReadLatest(t.Context(), js, stream.Results, "results.entra.>", func(msg jetstream.Msg) error {
		var result orgsyncv1.WriterResult
		if err := stream.Decode(msg, &result); err != nil {
			return err
		}
		got[msg.Subject()] = result.Revision
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]uint64{"results.entra.user.A": 2, "results.entra.user.B": 1}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConsumeBatchTakesWhatIsWaitingAndSettlesEachMessage(t *testing.T) {
	js := connect(t)
	pub := stream.NewPublisher(js)
	for i := range 7 {
		if _, err := pub.Publish(t.Context(), fmt.Sprintf("dir.entra.user.E%d", i), fmt.Sprint(i), &orgsyncv1.DesiredObject{Key: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := js.CreateOrUpdateConsumer(t.Context(), stream.Directory, jetstream.ConsumerConfig{
		Durable: "batch", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var sizes []int
	deliveries := map[string]int{}
	err = stream.ConsumeBatch(ctx, consumer, 5, func(_ context.Context, msgs []jetstream.Msg) []error {
		sizes = append(sizes, len(msgs))
		errs := make([]error, len(msgs))
		for i, msg := range msgs {
			var obj orgsyncv1.DesiredObject
			if err := stream.Decode(msg, &obj); err != nil {
				errs[i] = err
				continue
			}
			deliveries[obj.Key]++
			if obj.Key == "3" && deliveries[obj.Key] == 1 {
				errs[i] = stream.Retry(10*time.Millisecond, errors.New("not yet"))
			}
		}
		if len(deliveries) == 7 && deliveries["3"] == 2 {
			cancel()
		}
		return errs
	}, stream.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sizes[0] != 5 || sizes[1] != 2 {
		t.Errorf("batch sizes = %v, want 5 then 2 (then the redelivery)", sizes)
	}
	if deliveries["3"] != 2 || deliveries["0"] != 1 {
		t.Errorf("deliveries = %v", deliveries)
	}
}

// TestBatchInProgressIsNotDeliveredAgain: a batch that takes longer than the consumer's AckWait
// is reported in progress, so no other process fetching from the same durable consumer (a replica
// taking over) gets it meanwhile; without the reports it would, after the AckWait.
func TestBatchInProgressIsNotDeliveredAgain(t *testing.T) {
	for _, tt := range []struct {
		name          string
		every         time.Duration
		wantElsewhere int
	}{
		{name: "reported in progress", every: 100 * time.Millisecond, wantElsewhere: 0},
		{name: "not reported", every: 0, wantElsewhere: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			js := connect(t)
			consumer, err := js.CreateOrUpdateConsumer(t.Context(), stream.Directory, jetstream.ConsumerConfig{
				Durable: "slow", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond, FilterSubject: "dir.>",
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.NewPublisher(js).Publish(t.Context(), "dir.entra.user.E1", "E1:1", &orgsyncv1.DesiredObject{Key: "E1", Revision: 1}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			elsewhere := make(chan int, 1)
			done := make(chan error, 1)
			go func() {
				done <- stream.ConsumeBatch(ctx, consumer, 10, func(context.Context, []jetstream.Msg) []error {
					// Meanwhile another process fetches from the same consumer for a second.
					batch, err := consumer.Fetch(1, jetstream.FetchMaxWait(time.Second))
					n := 0
					if err == nil {
						for range batch.Messages() {
							n++
						}
					}
					elsewhere <- n
					cancel()
					return []error{nil}
				}, stream.ConsumeOptions{InProgressEvery: tt.every})
			}()
			if got := <-elsewhere; got != tt.wantElsewhere {
				t.Errorf("delivered elsewhere while in hand: %d, want %d", got, tt.wantElsewhere)
			}
			if err := <-done; err != nil {
				t.Errorf("ConsumeBatch = %v", err)
			}
		})
	}
}
