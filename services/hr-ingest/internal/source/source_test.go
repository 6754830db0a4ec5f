package source

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

func TestParseKind(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			got, err := ParseKind(string(kind))
			if err != nil || got != kind {
				t.Errorf("ParseKind(%q) = %q, %v", kind, got, err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if _, err := ParseKind("sftp"); err == nil || err.Error() != `kind "sftp" is not one of canonical, scim, bamboohr, csv, hibob, personio, poll` {
			t.Errorf("err = %v", err)
		}
	})
}

func TestWithDefaults(t *testing.T) {
	got := Config{Name: "x", Kind: KindCSV}.WithDefaults()
	if got.Location != time.UTC || got.MaxBodyBytes != DefaultSnapshotMaxBytes {
		t.Errorf("csv defaults = %v, %d", got.Location, got.MaxBodyBytes)
	}
	if got := (Config{Name: "w"}).WithDefaults(); got.Kind != KindCanonical || got.MaxBodyBytes != 0 {
		t.Errorf("canonical defaults = %q, %d", got.Kind, got.MaxBodyBytes)
	}
}

func TestValidateAll(t *testing.T) {
	secret, err := webhook.ParseSecret("whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ==")
	if err != nil {
		t.Fatal(err)
	}
	const token = "a-token-0123456789abcdef"
	tests := []struct {
		name    string
		configs []Config
		want    []string
	}{
		{name: "one of every kind", configs: []Config{
			{Name: "w", Secrets: []webhook.Secret{secret}},
			{Name: "b", Kind: KindBambooHR, Keys: [][]byte{[]byte("key")}},
			{Name: "s", Kind: KindSCIM, Tokens: []string{token}},
			{Name: "x", Kind: KindCSV, Tokens: []string{token}, CSVColumns: map[string]string{"workerId": "ID"}},
			{Name: "h", Kind: KindHiBob, Keys: [][]byte{[]byte("secret")}, API: API{BaseURL: "https://api.hibob.com/v1", User: "SERVICE-1", Token: token}},
			{Name: "be", Kind: KindBambooHR, Keys: [][]byte{[]byte("key")}, API: API{BaseURL: "https://api.bamboohr.com/api/gateway.php/acme/v1", Token: token}},
		}},
		{name: "a pulling source needs its API", configs: []Config{
			{Name: "h", Kind: KindHiBob},
			{Name: "be", Kind: KindBambooHR, Keys: [][]byte{[]byte("key")}, API: API{BaseURL: "ftp://api.bamboohr.com"}},
		}, want: []string{
			`source "h" needs a HiBob webhook secret`,
			`source "h" needs the vendor API's base URL (api.baseURL, http or https)`,
			`source "h" needs a HiBob service user id (api.user)`,
			`source "h" needs the vendor API's token (api.token)`,
			`source "be" needs the vendor API's base URL (api.baseURL, http or https)`,
			`source "be" needs the vendor API's token (api.token)`,
		}},
		{name: "credentials missing for the kind", configs: []Config{
			{Name: "w"}, {Name: "b", Kind: KindBambooHR, Tokens: []string{token}}, {Name: "s", Kind: KindSCIM, Keys: [][]byte{[]byte("k")}},
		}, want: []string{`source "w" needs a webhook secret`, `source "b" needs a BambooHR private key`, `source "s" needs a bearer token`}},
		{name: "names and scim tokens are not shared", configs: []Config{
			{Name: "a", Kind: KindSCIM, Tokens: []string{token}},
			{Name: "a", Kind: KindCSV, Tokens: []string{token}},
			{Name: "c", Kind: KindSCIM, Tokens: []string{token}},
		}, want: []string{`source "a" is configured twice`, `source "c", token 1: scim source "a" has the same token`}},
		{name: "unknown kind and columns", configs: []Config{
			{Name: "z", Kind: "sftp"}, {Name: "x", Kind: KindCSV, Tokens: []string{token}, CSVColumns: map[string]string{"salary": "Pay"}},
		}, want: []string{`source "z": kind "sftp" is not one of canonical, scim, bamboohr, csv, hibob, personio, poll`, `source "x": not worker fields: salary`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAll(tt.configs)
			var got []string
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					got = append(got, strings.SplitN(line, " (known:", 2)[0])
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
