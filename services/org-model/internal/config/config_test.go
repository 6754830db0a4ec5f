package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orgsync/orgsync/pkg/envconfig"
)

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("upnDomains: [corp.example.com]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("upnDomains: [corp.example.com]\nmapping:\n  entra:\n    shoeSize: 'worker.job_title'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"environment only", map[string]string{"UPN_DOMAIN": "corp.example.com"}, ""},
		{"policy file only", map[string]string{"ORGSYNC_CONFIG": good}, ""},
		{"neither", map[string]string{}, "UPN_DOMAIN: must be set when ORGSYNC_CONFIG is not"},
		{"bad domain", map[string]string{"UPN_DOMAIN": "corp"}, "UPN_DOMAIN: \"corp\" is not a domain name"},
		{"bad policy file stops with file and line", map[string]string{"ORGSYNC_CONFIG": bad}, bad + `:4: unknown entra attribute "shoeSize"`},
		{"plan timeout", map[string]string{"UPN_DOMAIN": "corp.example.com", "PLAN_TIMEOUT": "2m"}, ""},
		{"zero plan timeout", map[string]string{"UPN_DOMAIN": "corp.example.com", "PLAN_TIMEOUT": "0s"}, "PLAN_TIMEOUT: 0s is not a positive duration"},
		{"missing policy file", map[string]string{"ORGSYNC_CONFIG": filepath.Join(dir, "none.yaml")}, "ORGSYNC_CONFIG: policy: open"},
		{"finite HR retention with checkpoints", map[string]string{"UPN_DOMAIN": "corp.example.com", "HR_RETENTION": "720h", "CHECKPOINT_INTERVAL": "1h"}, ""},
		{"finite HR retention without checkpoints", map[string]string{"UPN_DOMAIN": "corp.example.com", "HR_RETENTION": "720h", "CHECKPOINT_EVENTS": "0"},
			"CHECKPOINT_EVENTS: HR_RETENTION is finite but CHECKPOINT_EVENTS is 0"},
		{"checkpoint interval too long for the retention", map[string]string{"UPN_DOMAIN": "corp.example.com", "HR_RETENTION": "1h", "CHECKPOINT_INTERVAL": "45m"},
			"CHECKPOINT_INTERVAL 45m0s must be at most half of HR_RETENTION 1h0m0s"},
		{"negative checkpoint events", map[string]string{"UPN_DOMAIN": "corp.example.com", "CHECKPOINT_EVENTS": "-1"}, "CHECKPOINT_EVENTS must be 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(envconfig.New(envconfig.Map(tc.env)))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want …%s…", err, tc.wantErr)
			}
		})
	}
}

func TestZeroConfigPolicyIsSensible(t *testing.T) {
	pol, err := Config{}.LoadPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if pol.Groups.Rollup.Enabled || pol.Lifecycle.PreCreateDays != 7 || pol.Guard.MaxChanges != 500 {
		t.Errorf("zero-config policy: rollup %v, pre-create %d, guard %+v", pol.Groups.Rollup.Enabled, pol.Lifecycle.PreCreateDays, pol.Guard)
	}
}
