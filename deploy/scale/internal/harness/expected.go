package harness

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
	"github.com/orgsync/orgsync/services/org-model/replay"
)

// Request is one webhook as sent: its id and body.
type Request struct {
	ID   string
	Body []byte
}

// Expected computes the desired state that a fresh org-model under policyYAML derives from the
// same webhooks, for every target the policy maps (ForTarget splits it): it runs hr-ingest in
// this process over an embedded JetStream in dir, sends the requests in order, reads the HR
// events hr-ingest stored, and computes their desired state with org-model's domain as plain
// function calls (replay.Desired), as org-model does at start before it reconciles. Tombstones
// are left out.
func Expected(ctx context.Context, dir, policyYAML string, requests []Request) ([]*orgsyncv1.DesiredObject, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	natsSrv, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return nil, err
	}
	defer func() { natsSrv.Shutdown(); natsSrv.WaitForShutdown() }()
	logger := slog.New(slog.DiscardHandler)
	secret, err := webhook.ParseSecret(SecretText)
	if err != nil {
		return nil, err
	}
	ingest, err := hringest.New(ctx, hringest.Config{
		NATSURL: natsSrv.ClientURL(), Streams: stream.DefaultConfig(),
		Server:             server.Config{Name: hringest.Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"},
		Sources:            []hringest.SourceConfig{{Name: Source, Secrets: []webhook.Secret{secret}}},
		TimestampTolerance: 5 * time.Minute, MaxBodyBytes: 8 << 20, PublishTimeout: 5 * time.Second,
	}, logger)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ingest.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	sender := NewSender(func() string { return "http://" + ingest.HTTPAddr() + "/v1/sources/" + Source + "/events" })
	for _, r := range requests {
		if _, err := sender.Send(ctx, r.ID, r.Body); err != nil {
			return nil, fmt.Errorf("fresh run: %w", err)
		}
	}
	nc, err := nats.Connect(natsSrv.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	events, err := readHR(ctx, js)
	if err != nil {
		return nil, fmt.Errorf("fresh run: %w", err)
	}
	objects, err := replay.Desired("policy.yaml", []byte(policyYAML), events, time.Now())
	if err != nil {
		return nil, fmt.Errorf("fresh run: %w", err)
	}
	return objects, nil
}

// readHR reads every event on stream HR, in order.
func readHR(ctx context.Context, js jetstream.JetStream) ([]*orgsyncv1.HREvent, error) {
	hr, err := js.Stream(ctx, stream.HR)
	if err != nil {
		return nil, fmt.Errorf("stream HR: %w", err)
	}
	last := hr.CachedInfo().State.LastSeq
	if last == 0 {
		return nil, nil
	}
	consumer, err := hr.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"hr.>"}})
	if err != nil {
		return nil, fmt.Errorf("reading HR: %w", err)
	}
	var events []*orgsyncv1.HREvent
	for {
		msg, err := consumer.Next(jetstream.FetchContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("reading HR: %w", err)
		}
		event := &orgsyncv1.HREvent{}
		if err := stream.Decode(msg, event); err != nil {
			return nil, err
		}
		events = append(events, event)
		meta, err := msg.Metadata()
		if err != nil {
			return nil, err
		}
		if meta.Sequence.Stream >= last {
			return events, nil
		}
	}
}

// ForTarget returns the objects of one target.
func ForTarget(objects []*orgsyncv1.DesiredObject, target orgsyncv1.Target) []*orgsyncv1.DesiredObject {
	var out []*orgsyncv1.DesiredObject
	for _, obj := range objects {
		if obj.GetTarget() == target {
			out = append(out, obj)
		}
	}
	return out
}

// ReadDesired reads the live (not tombstoned) desired objects under a DIRECTORY subject filter
// (stream.DirectoryFilter of one target, or "dir.>" for all).
func ReadDesired(ctx context.Context, js jetstream.JetStream, filter string) ([]*orgsyncv1.DesiredObject, error) {
	var objects []*orgsyncv1.DesiredObject
	err := stream.ReadLatest(ctx, js, stream.Directory, filter, func(msg jetstream.Msg) error {
		obj := &orgsyncv1.DesiredObject{}
		if err := stream.Decode(msg, obj); err != nil {
			return err
		}
		if !obj.GetTombstone() {
			objects = append(objects, obj)
		}
		return nil
	})
	return objects, err
}
