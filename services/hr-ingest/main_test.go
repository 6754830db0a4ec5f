package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/services/hr-ingest/service"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

const exportToken = "export-token-0123456789abcdef"

// startService runs hr-ingest with one source of every kind against an embedded JetStream.
func startService(t *testing.T) *service.Service {
	t.Helper()
	nats := natsembed.StartForTest(t)
	secret, _ := webhook.ParseSecret("whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==")
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, service.Config{
		NATSURL: nats.ClientURL(),
		Server:  server.Config{Name: service.Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"},
		Streams: stream.DefaultConfig(),
		Sources: []service.SourceConfig{
			{Name: "workday", Secrets: []webhook.Secret{secret}},
			{Name: "bamboo", Kind: service.KindBambooHR, Keys: [][]byte{[]byte("bamboo-private-key-0123456789")}},
			{Name: "entra", Kind: service.KindSCIM, Tokens: []string{"scim-token-0123456789abcdef"}},
			{Name: "export", Kind: service.KindCSV, Tokens: []string{exportToken}},
			{Name: "bob", Kind: service.KindHiBob, Keys: [][]byte{[]byte("hibob-webhook-secret-0123456789")},
				API: service.SourceAPI{BaseURL: "https://api.hibob.com/v1", User: "SERVICE-1", Token: "hibob-token-0123456789"}},
		},
		TimestampTolerance: 5 * time.Minute,
		OpenAPI:            openAPI,
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
	return svc
}

// documentedRoutes lists "METHOD /path" for every operation in openapi.yaml.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			routes = append(routes, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(routes)
	return routes
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	svc := startService(t)
	documented := documentedRoutes(t)
	if diff := cmp.Diff(documented, svc.Patterns()); diff != "" {
		t.Errorf("routes in openapi.yaml (-) and served (+):\n%s", diff)
	}
	// Every documented operation reaches a handler: the mux's own 404 and 405 never answer.
	for _, route := range documented {
		t.Run(route, func(t *testing.T) {
			method, path, _ := strings.Cut(route, " ")
			path = strings.NewReplacer("{source}", "nosuch", "{servicePrincipalId}", "sp", "{jobId}", "job").Replace(path)
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+svc.HTTPAddr()+path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") && resp.StatusCode == http.StatusNotFound {
				t.Errorf("%s answered by the mux itself: %d %s", route, resp.StatusCode, body)
			}
		})
	}
}

func TestServesOpenAPI(t *testing.T) {
	svc := startService(t)
	resp, err := http.Get("http://" + svc.HTTPAddr() + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, openAPI) {
		t.Errorf("GET /openapi.yaml: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

func TestSnapshotUploadCommand(t *testing.T) {
	svc := startService(t)
	dir := t.TempDir()
	csvFile, tokenFile := filepath.Join(dir, "export.csv"), filepath.Join(dir, "token")
	if err := os.WriteFile(csvFile, []byte("workerId,givenName,familyName\nE1,Ada,Lovelace\nE2,Grace,Hopper\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(exportToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		args    []string
		getenv  func(string) string
		want    string
		wantErr string
	}{
		{name: "first upload", args: []string{"-url", "http://" + svc.HTTPAddr(), "-source", "export", "-token-file", tokenFile, csvFile}, getenv: noEnv,
			want: "workers (0 already stored)"},
		{name: "same file again, token from the environment", args: []string{"-url", "http://" + svc.HTTPAddr(), "-source", "export", csvFile},
			getenv: func(name string) string {
				if name == "HR_INGEST_TOKEN" {
					return exportToken
				}
				return ""
			},
			want: "2 workers (0 already stored)"}, // a new upload is a new snapshot, applied again
		{name: "an upload named by a key", args: []string{"-url", "http://" + svc.HTTPAddr(), "-source", "export", "-token-file", tokenFile, "-idempotency-key", "nightly-2026-03-01", csvFile},
			getenv: noEnv, want: "2 workers (0 already stored)"},
		{name: "the same upload again, by its key", args: []string{"-url", "http://" + svc.HTTPAddr(), "-source", "export", "-token-file", tokenFile, "-idempotency-key", "nightly-2026-03-01", csvFile},
			getenv: noEnv, want: "2 workers (4 already stored)"},
		{name: "wrong token", args: []string{"-url", "http://" + svc.HTTPAddr(), "-source", "export", csvFile},
			getenv: func(string) string { return "wrong-token-0123456789" }, wantErr: "hr-ingest answered 401"},
		{name: "no source", args: []string{csvFile}, getenv: noEnv, wantErr: "usage: hr-ingest snapshot-upload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := snapshotUpload(t.Context(), tt.args, tt.getenv, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) || !strings.HasPrefix(out.String(), "snapshot snap-") {
				t.Errorf("output %q, want it to contain %q", out.String(), tt.want)
			}
		})
	}
}
