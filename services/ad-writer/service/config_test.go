package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/envconfig"
)

func TestConfigFromEnv(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "bind.pass")
	if err := os.WriteFile(secretFile, []byte("s3cret-bind\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := map[string]string{
		"LDAP_URL": "ldaps://dc.corp.example.test", "LDAP_BIND_DN": "CN=orgsync,OU=Service,DC=corp", "LDAP_BIND_PASSWORD_FILE": secretFile,
		"LDAP_CA_FILE": "/etc/orgsync/ca.pem", "AD_BASE_DN": "DC=corp", "AD_USERS_OU": "OU=Users,DC=corp", "AD_GROUPS_OU": "OU=Groups,DC=corp",
	}
	with := func(changes map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range valid {
			env[k] = v
		}
		for k, v := range changes {
			if v == "" {
				delete(env, k)
				continue
			}
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // a variable name the error must mention; "" means valid
	}{
		{name: "valid", env: valid},
		{name: "plain ldap is upgraded with StartTLS", env: with(map[string]string{"LDAP_URL": "ldap://dc:389"})},
		{name: "not an LDAP URL", env: with(map[string]string{"LDAP_URL": "http://dc"}), wantErr: "LDAP_URL"},
		{name: "no password file", env: with(map[string]string{"LDAP_BIND_PASSWORD_FILE": ""}), wantErr: "LDAP_BIND_PASSWORD_FILE"},
		{name: "bad drift policy", env: with(map[string]string{"AD_DRIFT_POLICY": "ignore"}), wantErr: "AD_DRIFT_POLICY"},
		{name: "chunk too large", env: with(map[string]string{"AD_MEMBER_CHUNK": "5000"}), wantErr: "AD_MEMBER_CHUNK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(envconfig.New(envconfig.Map(tt.env)))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff("s3cret-bind", cfg.LDAP.BindPassword); diff != "" {
					t.Errorf("bind password (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v does not name %s", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the bind password: %v", err)
			}
		})
	}
}
