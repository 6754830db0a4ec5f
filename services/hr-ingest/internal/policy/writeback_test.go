package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

func TestParseWriteBack(t *testing.T) {
	env := lookup(map[string]string{"BAMBOO_KEY": "webhook-private-key", "BAMBOO_API_KEY": "api-key-0123456789",
		"CALLBACK": testSecret, "EXPORT_TOKEN": "export-token-0123456789"})
	policy := `
sources:
  - name: bamboo
    kind: bamboohr
    secrets: [{env: BAMBOO_KEY}]
    api: {baseURL: https://api.bamboohr.com/api/gateway.php/acme/v1, token: {env: BAMBOO_API_KEY}}
    writeBack: {attributes: [upn, mail], usernameField: customUsername}
  - name: export
    kind: csv
    secrets: [{env: EXPORT_TOKEN}]
    writeBack:
      attributes: [mail]
      from: ad
      webhook: {url: https://hr.example.com/hooks/orgsync, secret: {env: CALLBACK}}
  - name: quiet
    kind: csv
    secrets: [{env: EXPORT_TOKEN}]
`
	sources, err := Parse("policy.yaml", []byte(policy), env)
	if err != nil {
		t.Fatal(err)
	}
	if err := source.ValidateAll(sources); err != nil {
		t.Fatalf("valid write-back refused: %v", err)
	}
	want := []source.WriteBack{
		{Attributes: []source.Attribute{source.AttributeUPN, source.AttributeMail}, UsernameField: "customUsername"},
		{Attributes: []source.Attribute{source.AttributeMail}, From: source.FromAD},
		{},
	}
	for i, s := range sources {
		got := s.WriteBack
		got.Callback.Secret = nil
		if i == 1 && (sources[1].WriteBack.Callback.URL != "https://hr.example.com/hooks/orgsync" || len(sources[1].WriteBack.Callback.Secret) == 0) {
			t.Errorf("export's callback = %q with a secret of %d bytes", sources[1].WriteBack.Callback.URL, len(sources[1].WriteBack.Callback.Secret))
		}
		got.Callback.URL = ""
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("source %s write-back (-want +got):\n%s", s.Name, diff)
		}
	}
	if sources[2].WriteBack.Enabled() {
		t.Error("a source without writeBack writes back")
	}
}

func TestParseWriteBackRejects(t *testing.T) {
	env := lookup(map[string]string{"KEY": "webhook-private-key", "API": "api-key-0123456789", "TOKEN": "export-token-0123456789", "CALLBACK": testSecret})
	bamboo := "  - name: bamboo\n    kind: bamboohr\n    secrets: [{env: KEY}]\n    api: {baseURL: https://api.bamboohr.com/api/gateway.php/acme/v1, token: {env: API}}\n"
	csv := "  - name: export\n    kind: csv\n    secrets: [{env: TOKEN}]\n"
	tests := []struct {
		name, source, want string
	}{
		{"unknown attribute", bamboo + "    writeBack: {attributes: [phone]}\n", `policy.yaml:6: write-back attribute "phone" is not upn or mail`},
		{"no attributes", bamboo + "    writeBack: {usernameField: customUsername}\n", "policy.yaml:6: writeBack of source \"bamboo\" needs attributes"},
		{"unknown key", bamboo + "    writeBack: {attributes: [mail], fields: [x]}\n", `unknown key "fields" in writeBack`},
		{"bad from", bamboo + "    writeBack: {attributes: [mail], from: okta}\n", `writeBack.from "okta" is not entra or ad`},
		{"upn without its field", bamboo + "    writeBack: {attributes: [upn]}\n", "writing the upn back needs writeBack.usernameField"},
		{"csv has no API", csv + "    writeBack: {attributes: [mail]}\n", "kind csv has no API orgsync writes to: set writeBack.webhook"},
		{"webhook without secret", csv + "    writeBack: {attributes: [mail], webhook: {url: https://hr.example.com/h}}\n", "writeBack.webhook of source \"export\" needs secret"},
		{"webhook secret not whsec", csv + "    writeBack: {attributes: [mail], webhook: {url: https://hr.example.com/h, secret: {env: TOKEN}}}\n", "writeBack.webhook.secret of source \"export\""},
		{"webhook url not http", csv + "    writeBack: {attributes: [mail], webhook: {url: ftp://hr.example.com/h, secret: {env: CALLBACK}}}\n", "writeBack.webhook.url must be an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources, err := Parse("policy.yaml", []byte("sources:\n"+tt.source), env)
			if err == nil {
				err = source.ValidateAll(sources)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			for _, secret := range []string{"api-key-0123456789", "export-token-0123456789", testSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestParseWorkerIDField(t *testing.T) {
	env := lookup(map[string]string{"SECRET": "hibob-webhook-secret-0123456789", "TOKEN": "hibob-token-0123456789"})
	bob := "sources:\n  - name: bob\n    kind: hibob\n    secrets: [{env: SECRET}]\n    api: {baseURL: https://api.hibob.com/v1, user: SERVICE-1, token: {env: TOKEN}, workerIdField: work.employeeIdInCompany}\n"
	sources, err := Parse("policy.yaml", []byte(bob), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := sources[0].API.WorkerIDField; got != "work.employeeIdInCompany" {
		t.Errorf("workerIdField = %q", got)
	}
	withWriteBack := bob + "    writeBack: {attributes: [mail]}\n"
	sources, err = Parse("policy.yaml", []byte(withWriteBack), env)
	if err == nil {
		err = source.ValidateAll(sources)
	}
	if err == nil || !strings.Contains(err.Error(), "with api.workerIdField use writeBack.webhook") {
		t.Errorf("write-back through Bob's API with mapped ids: %v, want it refused", err)
	}
	bamboo := "sources:\n  - name: b\n    kind: bamboohr\n    secrets: [{env: SECRET}]\n    api: {baseURL: https://x.example/v1, token: {env: TOKEN}, workerIdField: employeeNumber}\n"
	if _, err := Parse("policy.yaml", []byte(bamboo), env); err == nil || !strings.Contains(err.Error(), "policy.yaml:5: api.workerIdField applies to a source of kind hibob only") {
		t.Errorf("bamboohr with workerIdField: %v", err)
	}
}
