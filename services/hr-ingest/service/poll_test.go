package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

// TestPollSourceServed runs hr-ingest with an AFAS poll source: it polls the fake AFAS on its
// own, and GET /v1/pull/status shows the source's cursor and last full pull to a viewer (and to
// nobody without an orgsync token); the source takes no webhook.
func TestPollSourceServed(t *testing.T) {
	fake := vendortest.NewAFAS(t, "Orgsync_Employees", vendortest.AFASToken("0123456789ABCDEF"), "Medewerker", "Roepnaam", "Achternaam", "Gewijzigd")
	fake.Put(map[string]any{"Medewerker": "1001", "Roepnaam": "Ann", "Achternaam": "Ash", "Gewijzigd": "2026-03-01T08:00:00Z"})
	ns := natsembed.StartForTest(t)
	authCfg, tokens := authtest.RoleTokens(t)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, Config{
		NATSURL: ns.ClientURL(),
		Server:  server.Config{Name: Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Auth: authCfg},
		Streams: stream.DefaultConfig(),
		Sources: []SourceConfig{{Name: "afas", Kind: KindPoll, Poll: source.Poll{Preset: source.PresetAFAS, URL: fake.ConnectorURL(),
			ModifiedField: "Gewijzigd", Auth: source.PollAuth{Secret: "0123456789ABCDEF"}, Interval: time.Second,
			Fields: map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam"}}}},
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
	get := func(token string) (*http.Response, map[string][]map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+PullStatusPattern[len("GET "):], nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string][]map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, _ := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status without a token: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := get(tokens[auth.Viewer])
		if resp.StatusCode == http.StatusOK && len(body["polls"]) == 1 && body["polls"][0]["lastSnapshotId"] != nil {
			p := body["polls"][0]
			if p["source"] != "afas" || p["active"] != true || p["since"] != "2026-03-01T08:00:00Z" || p["recent"] != nil {
				t.Errorf("poll status = %v", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no full pull in the status: %d %v", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Post(base+"/v1/sources/afas/events", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a webhook to a poll source: %d, want 404", resp.StatusCode)
	}
}
