package service

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/envconfig"
)

func TestConfigFromEnv(t *testing.T) {
	valid := map[string]string{
		"CONSOLE_PUBLIC_URL": "https://orgsync.example.com/", "CONSOLE_OIDC_CLIENT_ID": "console",
		"CONSOLE_SESSION_KEY": strings.Repeat("k", 32), "ORGMODEL_ADDR": "org-model:9090",
		"ORGSYNC_AUTH_OIDC_ISSUER": "https://login.example.com", "ORGSYNC_AUTH_OIDC_AUDIENCE": "api://orgsync",
		"CONSOLE_WRITERS": "entra-writer=http://entra-writer:8182;metrics=http://entra-writer:8080/metrics",
		"CONSOLE_TARGETS": "entra,ad", "CONSOLE_TRACE_URL": "https://traces.example.com/{traceId}",
	}
	with := func(changes map[string]string) map[string]string {
		vars := map[string]string{}
		for k, v := range valid {
			vars[k] = v
		}
		for k, v := range changes {
			if v == "" {
				delete(vars, k)
			} else {
				vars[k] = v
			}
		}
		return vars
	}
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr []string
	}{
		{"valid", valid, nil},
		{"nothing set", map[string]string{}, []string{"CONSOLE_PUBLIC_URL", "CONSOLE_OIDC_CLIENT_ID", "ORGMODEL_ADDR", "CONSOLE_SESSION_KEY: must be at least 32 bytes", "ORGSYNC_AUTH_OIDC_ISSUER"}},
		{"short session key", with(map[string]string{"CONSOLE_SESSION_KEY": "short"}), []string{"CONSOLE_SESSION_KEY: must be at least 32 bytes"}},
		{"public URL not http", with(map[string]string{"CONSOLE_PUBLIC_URL": "orgsync.example.com"}), []string{"CONSOLE_PUBLIC_URL"}},
		{"unknown target", with(map[string]string{"CONSOLE_TARGETS": "entra,ldap"}), []string{`CONSOLE_TARGETS: unknown target "ldap"`}},
		{"writer without URL", with(map[string]string{"CONSOLE_WRITERS": "entra-writer"}), []string{`CONSOLE_WRITERS: entry "entra-writer" is not name=adminURL`}},
		{"trace URL without the id", with(map[string]string{"CONSOLE_TRACE_URL": "https://traces.example.com/"}), []string{"CONSOLE_TRACE_URL: must contain {traceId}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(envconfig.New(envconfig.Map(tt.vars)))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				got := []string{cfg.PublicURL, cfg.Writers[0].Name, cfg.Writers[0].AdminURL, cfg.Writers[0].MetricsURL}
				want := []string{"https://orgsync.example.com", "entra-writer", "http://entra-writer:8182", "http://entra-writer:8080/metrics"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
				if len(cfg.Targets) != 2 {
					t.Errorf("targets %v, want entra and ad", cfg.Targets)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), strings.Repeat("k", 32)) {
				t.Error("the error shows the session key")
			}
		})
	}
}
