package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestAcceptTimeCrossesTheStream checks that the HR event's accept time, put in the context as
// baggage, reaches the consumer of the message, which measures the change's latency from it.
func TestAcceptTimeCrossesTheStream(t *testing.T) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(propagation.TraceContext{}) })
	js := connect(t)
	accepted := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ctx := metrics.WithAcceptedAt(t.Context(), accepted)
	obj := &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: "E1", Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: "E1"}}}
	if _, err := stream.NewPublisher(js).Publish(ctx, "dir.entra.user.E1", "entra.user.E1:1", obj); err != nil {
		t.Fatal(err)
	}
	consumer, err := js.OrderedConsumer(t.Context(), stream.Directory, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	consumeCtx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var inHandler, fromMessage time.Time
	err = stream.Consume(consumeCtx, consumer, func(ctx context.Context, msg jetstream.Msg) error {
		inHandler, _ = metrics.AcceptedAt(ctx)
		fromMessage, _ = metrics.AcceptedAt(stream.MessageContext(context.Background(), msg))
		cancel()
		return nil
	}, stream.ConsumeOptions{NoAck: true})
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]time.Time{"handler context": inHandler, "MessageContext": fromMessage} {
		if !got.Equal(accepted) {
			t.Errorf("accept time in the %s = %v, want %v", what, got, accepted)
		}
	}
}
