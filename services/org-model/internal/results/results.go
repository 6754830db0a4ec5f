// Package results follows stream RESULTS, where the writers say what they observed and did per
// object: it keeps the newest result per object for the query API and passes each result on
// (org-model gives a worker whose identifier a foreign account holds its next candidate).
package results

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/query"
)

// Recorder keeps the newest result per object path.
type Recorder interface {
	Record(path string, result *orgsyncv1.WriterResult)
}

var _ Recorder = (*query.Results)(nil)

// Follower reads the writers' results. Its Run is one goroutine, owned by its caller.
type Follower struct {
	js       jetstream.JetStream
	recorder Recorder
	onResult func(ctx context.Context, result *orgsyncv1.WriterResult) error
	logger   *slog.Logger
}

// NewFollower returns a Follower that records every result in recorder and then calls onResult
// with it; an error from onResult is logged and the result skipped.
func NewFollower(js jetstream.JetStream, recorder Recorder, onResult func(ctx context.Context, result *orgsyncv1.WriterResult) error, logger *slog.Logger) *Follower {
	return &Follower{js: js, recorder: recorder, onResult: onResult, logger: logger}
}

// Run reads the newest result of every object and then each new one, until ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	consumer, err := f.js.OrderedConsumer(ctx, stream.Results, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"results.>"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("consuming RESULTS: %w", err)
	}
	return stream.Consume(ctx, consumer, func(ctx context.Context, msg jetstream.Msg) error {
		var result orgsyncv1.WriterResult
		if err := stream.Decode(msg, &result); err != nil {
			return err
		}
		f.recorder.Record(strings.TrimPrefix(msg.Subject(), "results."), &result)
		return f.onResult(ctx, &result)
	}, stream.ConsumeOptions{NoAck: true, OnError: func(msg jetstream.Msg, err error) {
		f.logger.Warn("writer result not recorded", "subject", msg.Subject(), "error", err)
	}})
}
