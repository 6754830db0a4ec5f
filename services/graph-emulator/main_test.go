package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", env: map[string]string{}, want: config{Addr: "127.0.0.1:8081", LogLevel: slog.LevelInfo}},
		{name: "overrides", env: map[string]string{"GRAPH_EMULATOR_ADDR": ":9000", "GRAPH_EMULATOR_LOG_LEVEL": "debug"},
			want: config{Addr: ":9000", LogLevel: slog.LevelDebug}},
		{name: "verified domains", env: map[string]string{"GRAPH_EMULATOR_VERIFIED_DOMAINS": "corp.example.com, example.org,"},
			want: config{Addr: "127.0.0.1:8081", LogLevel: slog.LevelInfo, VerifiedDomains: []string{"corp.example.com", "example.org"}}},
		{name: "address without port", env: map[string]string{"GRAPH_EMULATOR_ADDR": "localhost"}, wantErr: "GRAPH_EMULATOR_ADDR"},
		{name: "unknown level", env: map[string]string{"GRAPH_EMULATOR_LOG_LEVEL": "chatty"}, wantErr: "GRAPH_EMULATOR_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(name string) string { return tt.env[name] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	announceReader, announceWriter := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, config{Addr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler), announceWriter)
	}()

	line, err := bufio.NewReader(announceReader).ReadString('\n')
	if err != nil {
		t.Fatalf("read announcement: %v", err)
	}
	baseURL, found := strings.CutPrefix(strings.TrimSpace(line), "graph emulator listening on ")
	if !found || !strings.HasSuffix(baseURL, "/v1.0") {
		t.Fatalf("announcement %q does not name the base URL", line)
	}

	get := func(url string) *http.Response {
		t.Helper()
		request, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		answer, err := http.DefaultClient.Do(request)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { answer.Body.Close() })
		return answer
	}
	if answer := get(baseURL + "/users"); answer.StatusCode != http.StatusOK {
		t.Errorf("GET /users: status %d", answer.StatusCode)
	}
	statsAnswer := get(strings.TrimSuffix(baseURL, "/v1.0") + "/_emulator/stats")
	var stats map[string]any
	if err := json.NewDecoder(statsAnswer.Body).Decode(&stats); err != nil {
		t.Fatalf("decode stats: %v", err)
	}
	if diff := cmp.Diff(float64(1), stats["requests"]); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve returned %v after cancellation; want nil", err)
	}
}
