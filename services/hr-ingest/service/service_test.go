package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/ingest"
)

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "orgsync.yaml")
	policy := `sources:
  - name: entra
    kind: scim
    secrets: [{env: ENTRA_TOKEN}]
    timezone: America/Chicago
    rateLimit: {requests: 40, per: 1s}
  - name: bamboo
    kind: bamboohr
    secrets: [{env: BAMBOO_KEY}]
  - name: export
    kind: csv
    secrets: [{env: EXPORT_TOKEN}]
    csv: {columns: {workerId: Employee ID}}
`
	if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromEnv(envconfig.New(envconfig.Map(map[string]string{
		"ORGSYNC_CONFIG":           policyFile,
		"ENTRA_TOKEN":              "entra-token-0123456789",
		"BAMBOO_KEY":               "bamboo-key",
		"EXPORT_TOKEN":             "export-token-0123456789",
		"HR_SOURCES":               "workday",
		"HR_SOURCE_WORKDAY_SECRET": "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==",
		"REDIS_URL":                "redis://127.0.0.1:6379/0",
		"TRUSTED_PROXIES":          "10.0.0.0/8, fd00::/8",
		"MAX_IN_FLIGHT":            "64",
	})))
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Name, Zone    string
		Kind          SourceKind
		Secrets, Keys int
		Tokens        []string
		Rate          int
		Columns       map[string]string
	}
	var got []summary
	for _, s := range cfg.Sources {
		zone := ""
		if s.Location != nil {
			zone = s.Location.String()
		}
		got = append(got, summary{Name: s.Name, Kind: s.Kind, Zone: zone, Secrets: len(s.Secrets), Keys: len(s.Keys), Tokens: s.Tokens, Rate: s.RateRequests, Columns: s.CSVColumns})
	}
	want := []summary{
		{Name: "entra", Kind: KindSCIM, Zone: "America/Chicago", Tokens: []string{"entra-token-0123456789"}, Rate: 40},
		{Name: "bamboo", Kind: KindBambooHR, Zone: "UTC", Keys: 1},
		{Name: "export", Kind: KindCSV, Zone: "UTC", Tokens: []string{"export-token-0123456789"}, Columns: map[string]string{"workerId": "Employee ID"}},
		{Name: "workday", Kind: KindCanonical, Secrets: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if cfg.RedisURL != "redis://127.0.0.1:6379/0" || cfg.RetryAfter != 5*time.Second {
		t.Errorf("RedisURL %q, RetryAfter %v", cfg.RedisURL, cfg.RetryAfter)
	}
	edges := fmt.Sprint(cfg.TrustedProxies, cfg.MaxInFlight, cfg.UnauthenticatedPerMinute, cfg.SnapshotLockTTL)
	if edges != "[10.0.0.0/8 fd00::/8] 64 10 10m0s" {
		t.Errorf("trusted proxies, in-flight cap, failures per minute, snapshot lock TTL = %s", edges)
	}
}

func TestConfigFromEnvRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		vars    map[string]string
		want    []string
		notWant string
	}{
		{name: "nothing configured", vars: map[string]string{}, want: []string{"HR_SOURCES: no HR source is configured"}},
		{name: "short token", vars: map[string]string{
			"ORGSYNC_CONFIG": write("short.yaml", "sources:\n  - {name: e, kind: scim, secrets: [{env: T}]}\n"), "T": "short-secret",
		}, want: []string{`ORGSYNC_CONFIG: ` + filepath.Join(dir, "short.yaml") + `:2: source "e", token 1: a bearer token must be at least 16 characters`}, notWant: "short-secret"},
		{name: "bad policy line", vars: map[string]string{
			"ORGSYNC_CONFIG": write("bad.yaml", "sources:\n  - name: e\n    kind: scim\n    secrets: [{env: T}]\n    tokens: x\n"), "T": "long-enough-token-0123",
		}, want: []string{"bad.yaml:5: unknown key \"tokens\" in a source"}},
		{name: "same name twice across forms", vars: map[string]string{
			"ORGSYNC_CONFIG": write("dup.yaml", "sources:\n  - {name: workday, kind: scim, secrets: [{env: T}]}\n"), "T": "long-enough-token-0123",
			"HR_SOURCES": "workday", "HR_SOURCE_WORKDAY_SECRET": "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==",
		}, want: []string{`source "workday" is configured twice`}},
		{name: "two scim sources with one token", vars: map[string]string{
			"ORGSYNC_CONFIG": write("shared.yaml", "sources:\n  - {name: a, kind: scim, secrets: [{env: T}]}\n  - {name: b, kind: scim, secrets: [{env: T}]}\n"), "T": "long-enough-token-0123",
		}, want: []string{`source "b", token 1: scim source "a" has the same token`}, notWant: "long-enough-token-0123"},
		{name: "bad edge settings", vars: map[string]string{
			"HR_SOURCES": "w", "HR_SOURCE_W_SECRET": "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==",
			"TRUSTED_PROXIES": "10.0.0.0/8,ingress", "MAX_IN_FLIGHT": "0", "UNAUTHENTICATED_PER_MINUTE": "-1",
		}, want: []string{`TRUSTED_PROXIES: "ingress" is not a CIDR prefix`, "MAX_IN_FLIGHT: 0 is not a positive number", "UNAUTHENTICATED_PER_MINUTE: -1 is not a positive number"}},
		{name: "every problem of the shared policy file", vars: map[string]string{
			"ORGSYNC_CONFIG": "../../../pkg/policyfile/testdata/several-problems.yaml",
			"WORKDAY_SECRET": "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==", "SCIM_TOKEN": "long-enough-token-0123",
		}, want: []string{
			"several-problems.yaml:16: maxBodyBytes must be a positive whole number",
			`several-problems.yaml:17: source "workday" is already defined on line 13`,
			`several-problems.yaml:20: source "export" needs a kind`,
			`several-problems.yaml:23: unknown key "colour" in a source`,
		}, notWant: "long-enough-token-0123"},
		{name: "bad canonical secret", vars: map[string]string{"HR_SOURCES": "w", "HR_SOURCE_W_SECRET": "not-base64!"},
			want: []string{"HR_SOURCE_W_SECRET: secret 1: a webhook secret must be whsec_"}, notWant: "not-base64!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(envconfig.New(envconfig.Map(tt.vars)))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q repeats a secret", err)
			}
		})
	}
}

// TestNewClosesListenersWhenStartFails: a start that fails after opening its listeners returns
// its error and leaves the ports it had opened free (and its NATS connection closed), so a retry
// in the same process (or a supervisor's restart on a fixed port) can bind them again.
func TestNewClosesListenersWhenStartFails(t *testing.T) {
	tests := []struct {
		name string
		// natsURL returns the NATS the service starts against.
		natsURL func(t *testing.T) string
		wantErr string
	}{
		{
			name: "JetStream unreachable",
			// Nothing listens there: the start waits for JetStream until its context ends.
			natsURL: func(t *testing.T) string { return "nats://" + freeAddr(t) },
		},
		{
			name: "JetStream reached, then refused",
			// A stream squatting on the snapshot-lock bucket's subjects: the streams are set up,
			// then the bucket cannot be.
			natsURL: func(t *testing.T) string {
				ns := natsembed.StartForTest(t)
				nc, err := nats.Connect(ns.ClientURL())
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				js, err := jetstream.New(nc)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "SQUAT", Subjects: []string{"$KV." + ingest.SnapshotLockBucket + ".>"}}); err != nil {
					t.Fatal(err)
				}
				return ns.ClientURL()
			},
			wantErr: ingest.SnapshotLockBucket,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
			cfg, err := ConfigFromEnv(envconfig.New(envconfig.Map(map[string]string{
				"HR_SOURCES":               "workday",
				"HR_SOURCE_WORKDAY_SECRET": "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==",
				"HTTP_ADDR":                httpAddr,
				"GRPC_ADDR":                grpcAddr,
				"NATS_URL":                 tt.natsURL(t),
				"NATS_MANAGE_STREAMS":      "true",
			})))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_, err = New(ctx, cfg, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error naming %q", err, tt.wantErr)
			}
			for _, addr := range []string{httpAddr, grpcAddr} {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("%s is still held after the failed start: %v", addr, err)
					continue
				}
				l.Close()
			}
		})
	}
}

// freeAddr returns a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
