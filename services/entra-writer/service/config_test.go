package service

import (
	"strings"
	"testing"

	"github.com/orgsync/orgsync/pkg/envconfig"
)

func TestFirstDayChannelConfig(t *testing.T) {
	const secret = "whsec_dGhpcnR5LXR3byBieXRlcyBvZiBzaGFyZWQga2V5IQ=="
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "none: no pass", env: map[string]string{}},
		{name: "the manager's mailbox", env: map[string]string{"ENTRA_FIRST_DAY_MAIL_SENDER": "onboarding@corp.example.com"}},
		{name: "a webhook", env: map[string]string{"ENTRA_FIRST_DAY_WEBHOOK_URL": "https://tickets.example.com/hooks", "ENTRA_FIRST_DAY_WEBHOOK_SECRET": secret}},
		{name: "both", wantErr: "ENTRA_FIRST_DAY_WEBHOOK_URL", env: map[string]string{"ENTRA_FIRST_DAY_MAIL_SENDER": "onboarding@corp.example.com",
			"ENTRA_FIRST_DAY_WEBHOOK_URL": "https://tickets.example.com/hooks", "ENTRA_FIRST_DAY_WEBHOOK_SECRET": secret}},
		{name: "a webhook without its secret", wantErr: "ENTRA_FIRST_DAY_WEBHOOK_SECRET", env: map[string]string{"ENTRA_FIRST_DAY_WEBHOOK_URL": "https://tickets.example.com/hooks"}},
		{name: "a webhook that is not a URL", wantErr: "ENTRA_FIRST_DAY_WEBHOOK_URL", env: map[string]string{"ENTRA_FIRST_DAY_WEBHOOK_URL": "tickets", "ENTRA_FIRST_DAY_WEBHOOK_SECRET": secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envconfig.New(func(name string) (string, bool) { v, ok := tc.env[name]; return v, ok })
			cfg, err := ConfigFromEnv(env)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ConfigFromEnv: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("ConfigFromEnv: %v, want an error naming %s", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), secret):
				t.Errorf("the error shows the webhook secret: %v", err)
			case tc.wantErr == "" && (cfg.FirstDayMailSender != tc.env["ENTRA_FIRST_DAY_MAIL_SENDER"] || cfg.FirstDayWebhookURL != tc.env["ENTRA_FIRST_DAY_WEBHOOK_URL"]):
				t.Errorf("config: sender %q, webhook %q", cfg.FirstDayMailSender, cfg.FirstDayWebhookURL)
			}
		})
	}
}
