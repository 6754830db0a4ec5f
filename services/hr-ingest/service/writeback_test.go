package service

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

const callbackSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestWriteBackThroughTheService: a source configured with a write-back webhook gets a hire's
// UPN signed once entra-writer reported it; the status shows the write-back to viewers, and only
// operators may replay.
func TestWriteBackThroughTheService(t *testing.T) {
	srv := streamtest.Start(t)
	var mu sync.Mutex
	var received []string
	hook, err := standardwebhooks.NewWebhook(callbackSecret)
	if err != nil {
		t.Fatal(err)
	}
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := hook.Verify(body, r.Header); err != nil {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		received = append(received, string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(callback.Close)
	secret, err := webhook.ParseSecret(callbackSecret)
	if err != nil {
		t.Fatal(err)
	}
	authCfg, tokens := authtest.RoleTokens(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, Config{
		NATSURL: srv.ClientURL(),
		Server:  server.Config{Name: Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Auth: authCfg},
		Streams: stream.DefaultConfig(),
		Sources: []SourceConfig{{Name: "workday", Kind: KindCanonical, Secrets: []webhook.Secret{secret},
			WriteBack: source.WriteBack{Attributes: []source.Attribute{source.AttributeUPN}, Callback: source.Callback{URL: callback.URL, Secret: secret}}}},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := "http://" + svc.HTTPAddr()

	path := subject.UserPath(orgsyncv1.Target_TARGET_ENTRA, "W1")
	result := &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER, Key: "W1",
		Revision: 1, Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, UserPrincipalName: "ada@corp.example.com", HrSource: "workday"}
	if _, err := stream.NewPublisher(srv.JS).Publish(t.Context(), subject.ResultSubject(path), path+":1", result); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the callback received %d write-backs, want 1", n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("status shows the write-back to a viewer", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/pull/status", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[auth.Viewer])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var status struct {
			WriteBack struct {
				Sources []struct {
					Source string `json:"source"`
					Parked int    `json:"parked"`
				} `json:"sources"`
			} `json:"writeBack"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&status); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, %v", resp.StatusCode, err)
		}
		if len(status.WriteBack.Sources) != 1 || status.WriteBack.Sources[0].Source != "workday" {
			t.Errorf("write-back status = %+v, want source workday", status.WriteBack)
		}
	})
	t.Run("replay is for operators", func(t *testing.T) {
		tests := []struct {
			name, url, token string
			want             int
		}{
			{"no token", base + "/v1/writeback/workday/replay", "", http.StatusUnauthorized},
			{"viewer", base + "/v1/writeback/workday/replay", tokens[auth.Viewer], http.StatusForbidden},
			{"operator", base + "/v1/writeback/workday/replay", tokens[auth.Operator], http.StatusOK},
			{"operator, a source that does not write back", base + "/v1/writeback/nope/replay", tokens[auth.Operator], http.StatusNotFound},
			{"operator, notifications without notification sources", base + "/v1/pull/workday/replay", tokens[auth.Operator], http.StatusNotFound},
			{"viewer, notifications", base + "/v1/pull/workday/replay", tokens[auth.Viewer], http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if resp, body := post(t, tt.url, "application/json", tt.token, ""); resp.StatusCode != tt.want {
					t.Errorf("status = %d %s, want %d", resp.StatusCode, body, tt.want)
				}
			})
		}
	})
}
