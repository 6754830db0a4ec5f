package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
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
	orgmodel "github.com/orgsync/orgsync/services/org-model/service"
)

// Request is one webhook as sent: its id and body.
type Request struct {
	ID   string
	Body []byte
}

// Expected computes the desired state that a fresh org-model under policyYAML derives from the
// same webhooks, for every target the policy maps (ForTarget splits it): it runs hr-ingest and
// org-model in this process over an embedded JetStream in dir, sends the requests in order,
// starts org-model once they are all stored (so it replays and reconciles from nothing) and reads
// DIRECTORY. Tombstones are left out.
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
	defer stop()
	done := make(chan error, 2)
	go func() { done <- ingest.Run(runCtx) }()
	sender := NewSender(func() string { return "http://" + ingest.HTTPAddr() + "/v1/sources/" + Source + "/events" })
	for _, r := range requests {
		if _, err := sender.Send(ctx, r.ID, r.Body); err != nil {
			return nil, fmt.Errorf("fresh run: %w", err)
		}
	}
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policyYAML), 0o600); err != nil {
		return nil, err
	}
	model, err := orgmodel.New(ctx, orgmodel.Config{
		NATSURL: natsSrv.ClientURL(), Streams: stream.DefaultConfig(), PolicyFile: policyPath,
		Server: server.Config{Name: orgmodel.Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"},
	}, logger)
	if err != nil {
		return nil, err
	}
	go func() { done <- model.Run(runCtx) }()
	defer func() {
		stop()
		<-done
		<-done
	}()
	if err := waitHTTP(ctx, "http://"+model.HTTPAddr()+"/readyz"); err != nil {
		return nil, fmt.Errorf("fresh org-model: %w", err)
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
	return ReadDesired(ctx, js, "dir.>")
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

func waitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(string(body))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", url, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
