package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/policyfile"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
}

// testSecret is a Standard Webhooks secret for tests only.
const testSecret = "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NQ=="

func TestParse(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := `
groups: {owned: by-org-model}   # other services' sections are left alone
sources:
  - name: workday
    kind: canonical
    secrets: [{env: WORKDAY_SECRET}]
    timezone: Europe/London
    rateLimit: {requests: 50, per: 1m, burst: 10}
  - name: export
    kind: csv
    secrets:
      - file: ` + tokenFile + `
      - env: EXPORT_TOKENS
    maxBodyBytes: 67108864
    csv:
      delimiter: ";"
      columns: {workerId: Employee ID, familyName: Surname}
    hierarchy: [company, department]   # org-model's key, accepted here
  - name: bob
    kind: hibob
    secrets: [{env: HIBOB_SECRET}]
    api:
      baseURL: https://api.hibob.com/v1
      user: SERVICE-4711
      token: {file: ` + tokenFile + `}
  - name: bamboo
    kind: bamboohr
    secrets: [{env: BAMBOO_KEY}]
    api:
      baseURL: https://api.bamboohr.com/api/gateway.php/acme/v1
      token: {env: BAMBOO_API_KEY}
      fields: [firstName, lastName, workEmail]
`
	got, err := Parse("orgsync.yaml", []byte(policy), lookup(map[string]string{
		"WORKDAY_SECRET": testSecret, "EXPORT_TOKENS": "old-token-0123456789 new-token-0123456789",
		"HIBOB_SECRET": "hibob-webhook-secret", "BAMBOO_KEY": "bamboo-webhook-key", "BAMBOO_API_KEY": "bamboo-api-key",
	}))
	if err != nil {
		t.Fatal(err)
	}
	london, _ := time.LoadLocation("Europe/London")
	secret, err := webhook.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Config{
		{Name: "workday", Kind: source.KindCanonical, Secrets: []webhook.Secret{secret}, Location: london, RateRequests: 50, RatePeriod: time.Minute, RateBurst: 10},
		{Name: "export", Kind: source.KindCSV, Tokens: []string{"file-token-0123456789", "old-token-0123456789", "new-token-0123456789"},
			Location: time.UTC, MaxBodyBytes: 64 << 20, CSVComma: ';', CSVColumns: map[string]string{"workerId": "Employee ID", "familyName": "Surname"}},
		{Name: "bob", Kind: source.KindHiBob, Keys: [][]byte{[]byte("hibob-webhook-secret")}, Location: time.UTC,
			API: source.API{BaseURL: "https://api.hibob.com/v1", User: "SERVICE-4711", Token: "file-token-0123456789"}},
		{Name: "bamboo", Kind: source.KindBambooHR, Keys: [][]byte{[]byte("bamboo-webhook-key")}, Location: time.UTC,
			API: source.API{BaseURL: "https://api.bamboohr.com/api/gateway.php/acme/v1", Token: "bamboo-api-key", Fields: []string{"firstName", "lastName", "workEmail"}}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string
	}{
		{name: "no sources", policy: "groups: {}\n", want: []string{"orgsync.yaml:1: no sources: hr-ingest needs at least one"}},
		{name: "not YAML", policy: "sources: [\n", want: []string{"orgsync.yaml:1: did not find expected node content"}},
		{name: "every problem with its line", policy: `sources:
  - name: "bad name!"
    kind: sftp
    secrets: [{env: MISSING}]
    colour: blue
  - name: ok
    kind: csv
    secrets: [{env: SET, file: /x}]
    timezone: Mars/Olympus
    rateLimit: {requests: -1, per: soon}
    csv: {delimiter: ";;", columns: {salary: Pay}}
  - name: ok
    kind: bamboohr
    secrets: [{file: /nonexistent/key}]
    csv: {}
  - kind: scim
  - name: bob
    kind: hibob
    secrets: [{env: SET}]
    api: {baseURL: https://api.hibob.com/v1, password: x}
  - name: plain
    kind: canonical
    secrets: [{env: SET}]
    api: {token: {env: SET}}
`, want: []string{
			`orgsync.yaml:2: source name "bad name!" must be 1 to 64 letters, digits, '-' or '_'`,
			`orgsync.yaml:3: kind "sftp" is not one of canonical, scim, bamboohr, csv, hibob, personio, poll`,
			`orgsync.yaml:4: environment variable MISSING (a secret of source "bad name!") is not set`,
			`orgsync.yaml:5: unknown key "colour" in a source (allowed: name, kind, secrets, timezone, rateLimit, maxBodyBytes, csv, hierarchy, api, poll, writeBack)`,
			`orgsync.yaml:8: a secret is either {env: NAME} or {file: PATH}`,
			`orgsync.yaml:9: timezone "Mars/Olympus" is not an IANA time zone such as Europe/London`,
			`orgsync.yaml:10: rateLimit.requests must be a positive whole number, not "-1"`,
			`orgsync.yaml:10: rateLimit.per "soon" is not a positive duration such as 1s or 1m`,
			`orgsync.yaml:11: csv.delimiter must be one character other than a quote or a line break`,
			`orgsync.yaml:11: csv.columns: not worker fields: salary (known: workerId, givenName, familyName, middleName, preferredName, displayName, workEmail, jobTitle, orgUnitId, department, managerWorkerId, location, company, costCenter, division, phoneNumber, employmentType, employmentStatus, hireDate, startDate, endDate)`,
			`orgsync.yaml:12: source "ok" is already defined on line 6`,
			`orgsync.yaml:14: secret file of source "ok": no such file or directory`,
			`orgsync.yaml:15: csv settings only apply to a source of kind csv`,
			`orgsync.yaml:16: a source needs a name`,
			`orgsync.yaml:16: source "" needs secrets (a list of {env: NAME} or {file: PATH})`,
			`orgsync.yaml:20: unknown key "password" in api (allowed: baseURL, user, token, fields, workerIdField)`,
			`orgsync.yaml:20: source "bob" needs api.token ({env: NAME} or {file: PATH})`,
			`orgsync.yaml:23: source "plain", secret 1: a webhook secret must be whsec_ followed by base64 of at least 16 bytes`,
			`orgsync.yaml:24: api settings only apply to a source of kind bamboohr, hibob or personio`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("orgsync.yaml", []byte(tt.policy), lookup(map[string]string{"SET": "x"}))
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "s")
	if err := os.WriteFile(secretFile, []byte("super-secret-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := "sources:\n  - name: a\n    kind: nope\n    secrets: [{file: " + secretFile + "}, {env: S}]\n"
	_, err := Parse("p.yaml", []byte(policy), lookup(map[string]string{"S": "env-secret-value"}))
	if err == nil || strings.Contains(err.Error(), "super-secret-value") || strings.Contains(err.Error(), "env-secret-value") {
		t.Errorf("err = %v: want an error that does not repeat a secret", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("sources:\n  - name: a\n    kind: canonical\n    secrets: [{env: S}]\n"))
	f.Add([]byte("sources:\n  - {name: e, kind: csv, secrets: [{env: S}], csv: {columns: {workerId: ID}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sources, err := Parse("fuzz.yaml", data, lookup(map[string]string{"S": "value-0123456789abcdef"}))
		if err != nil {
			return
		}
		for _, s := range sources {
			if s.Name == "" || s.Kind == "" || len(s.Secrets)+len(s.Keys)+len(s.Tokens) == 0 || s.Location == nil {
				t.Fatalf("accepted an incomplete source: %+v", s)
			}
		}
	})
}

// TestEveryProblemOfAFileAtOnce reads policy files with several problems each and gets every
// problem of hr-ingest's part (the sources list), each as file:line: reason, in line order —
// and none of the other services' (org-model's unknown key, CEL and hierarchy problems in the
// shared file are org-model's to report).
func TestEveryProblemOfAFileAtOnce(t *testing.T) {
	env := lookup(map[string]string{
		"WORKDAY_SECRET": testSecret, "SCIM_TOKEN": "scim-token-0123456789", "BAMBOO_KEY": "bamboo-key",
		"EXPORT_TOKEN": "export-token-0123456789", "BOB_SECRET": "bob-secret",
	})
	for _, tc := range []struct {
		file string
		want []string // "line: reason"
	}{
		{"../../../../pkg/policyfile/testdata/several-problems.yaml", []string{
			`16: maxBodyBytes must be a positive whole number, not "lots"`,
			`17: source "workday" is already defined on line 13`,
			`20: source "export" needs a kind (canonical, scim, bamboohr, csv, hibob, personio or poll)`,
			`23: unknown key "colour" in a source (allowed: name, kind, secrets, timezone, rateLimit, maxBodyBytes, csv, hierarchy, api, poll, writeBack)`,
		}},
		{"testdata/several-problems.yaml", []string{
			`7: rateLimit.requests must be a positive whole number, not "many"`,
			`8: source "bamboo" needs api.token ({env: NAME} or {file: PATH})`,
			`11: secrets must be a non-empty list of {env: NAME} or {file: PATH}`,
			`12: unknown key "quote" in csv (allowed: delimiter, columns)`,
			`14: kind "workday" is not one of canonical, scim, bamboohr, csv, hibob, personio, poll`,
			`16: timezone "Europe/Atlantis" is not an IANA time zone such as Europe/London`,
			`17: source "bamboo" is already defined on line 4`,
			`19: environment variable UNSET_TOKEN (a secret of source "bamboo") is not set`,
		}},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.file))+"/"+filepath.Base(tc.file), func(t *testing.T) {
			sources, err := Load(tc.file, env)
			if err == nil {
				t.Fatalf("Load accepted %s: %+v", tc.file, sources)
			}
			var all policyfile.Errors
			if !errors.As(err, &all) {
				t.Fatalf("err = %T %v, want policyfile.Errors", err, err)
			}
			want := make([]string, len(tc.want))
			for i, lineAndReason := range tc.want {
				want[i] = tc.file + ":" + lineAndReason
			}
			if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
