package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// TestParsePoll reads an AFAS preset and a generic CSV poll source; the preset's settings are
// filled in by WithDefaults and anything written overrides them.
func TestParsePoll(t *testing.T) {
	policy := `
sources:
  - name: afas
    kind: poll
    secrets: [{env: AFAS_TOKEN}]
    timezone: Europe/Amsterdam
    rateLimit: {requests: 5, per: 1s}
    poll:
      preset: afas
      url: https://12345.rest.afas.online/ProfitRestServices/connectors/Orgsync_Employees
      modifiedField: Gewijzigd
      fields: {workerId: Medewerker, givenName: Roepnaam, familyName: Achternaam}
      interval: 2m
      fullSyncEvery: 12h
      paging: {size: 500}
  - name: legacy
    kind: poll
    secrets: [{env: LEGACY_KEY}]
    poll:
      url: https://hr.example.com/export.csv
      format: csv
      auth: {scheme: header, header: X-API-Key}
      query: {view: staff}
      changedSince: {param: since, format: unix, overlap: 5m}
      modifiedField: updated
      fields: {workerId: id, familyName: surname}
`
	sources, err := Parse("orgsync.yaml", []byte(policy), lookup(map[string]string{"AFAS_TOKEN": "<token><version>1</version><data>ABC</data></token>", "LEGACY_KEY": "k-0123"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := source.ValidateAll(sources); err != nil {
		t.Fatalf("valid sources refused: %v", err)
	}
	afas := sources[0].WithDefaults().Poll
	want := source.Poll{Preset: "afas", URL: "https://12345.rest.afas.online/ProfitRestServices/connectors/Orgsync_Employees",
		Format: "json", Records: "rows", Auth: source.PollAuth{Scheme: "afas", Secret: "<token><version>1</version><data>ABC</data></token>"},
		FullQuery: map[string]string{"orderbyfieldids": "Medewerker"},
		ChangedSince: source.ChangedSince{Param: "filtervalues", Format: "2006-01-02T15:04:05", Overlap: time.Minute,
			Query: map[string]string{"filterfieldids": "Gewijzigd", "operatortypes": "2", "orderbyfieldids": "Gewijzigd,Medewerker"}},
		Paging:        source.Paging{Mode: "offset", OffsetParam: "skip", LimitParam: "take", Size: 500},
		Fields:        map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam"},
		ModifiedField: "Gewijzigd", Interval: 2 * time.Minute, FullSyncEvery: 12 * time.Hour, Timeout: time.Minute, MaxRecords: 500000}
	if diff := cmp.Diff(want, afas); diff != "" {
		t.Errorf("afas (-want +got):\n%s", diff)
	}
	if sources[0].RateRequests != 5 || sources[0].Location.String() != "Europe/Amsterdam" {
		t.Errorf("afas rate %d, zone %v", sources[0].RateRequests, sources[0].Location)
	}
	legacy := sources[1].WithDefaults().Poll
	if legacy.Auth != (source.PollAuth{Scheme: "header", Header: "X-API-Key", Secret: "k-0123"}) || legacy.ChangedSince.Overlap != 5*time.Minute ||
		legacy.Paging.Mode != "none" || legacy.Query["view"] != "staff" {
		t.Errorf("legacy = %+v", legacy)
	}
}

// TestPollConfigNamesTheProblem: every mistake in a poll source is named with its line (policy
// file) or its key (the source's validation), all at once.
func TestPollConfigNamesTheProblem(t *testing.T) {
	env := lookup(map[string]string{"T": "token-0123456789"})
	for _, tc := range []struct {
		name   string
		policy string
		want   []string
	}{
		{
			name: "policy file",
			policy: `sources:
  - name: a
    kind: poll
    secrets: [{env: T}]
  - name: b
    kind: csv
    secrets: [{env: T}]
    poll: {url: https://x.example}
  - name: c
    kind: poll
    secrets: [{env: T}, {env: T}]
    poll:
      url: https://x.example
      colour: blue
      interval: soon
      fields: {workerId: id, salary: pay}
`,
			want: []string{
				`orgsync.yaml:2: source "a" of kind poll needs poll settings (at least poll.url and poll.fields)`,
				`orgsync.yaml:8: poll settings only apply to a source of kind poll`,
				`orgsync.yaml:8: source "b" needs poll.fields (worker field → the record's field, at least workerId and familyName)`,
				`orgsync.yaml:11: source "c" of kind poll takes one secret (the endpoint's token, password or key)`,
				`orgsync.yaml:14: unknown key "colour" in poll (allowed: preset, url, format, records, auth, query, fullQuery, changedSince, paging, fields, modifiedField, interval, fullSyncEvery, timeout, maxRecords)`,
				`orgsync.yaml:15: poll.interval "soon" is not a positive duration such as 30s, 1m or 24h`,
				`orgsync.yaml:16: poll.fields: not worker fields: salary (known: workerId, givenName, familyName, middleName, preferredName, displayName, workEmail, jobTitle, orgUnitId, department, managerWorkerId, location, company, costCenter, division, phoneNumber, employmentType, employmentStatus, hireDate, startDate, endDate)`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("orgsync.yaml", []byte(tc.policy), env)
			if err == nil {
				t.Fatal("accepted")
			}
			got := strings.Split(err.Error(), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	valid := func(mutate func(*source.Poll)) source.Config {
		p := source.Poll{URL: "https://hr.example.com/people", Auth: source.PollAuth{Secret: "s"},
			Fields: map[string]string{"workerId": "id", "familyName": "surname"}}
		mutate(&p)
		return source.Config{Name: "p", Kind: source.KindPoll, Poll: p}
	}
	for _, tc := range []struct {
		name   string
		config source.Config
		want   string
	}{
		{"no url", valid(func(p *source.Poll) { p.URL = "" }), `source "p": poll.url must be the endpoint's http or https URL`},
		{"credentials in the url", valid(func(p *source.Poll) { p.URL = "https://me:pw@hr.example.com/" }), `source "p": poll.url must not hold credentials: use auth and the source's secrets`},
		{"unknown preset", valid(func(p *source.Poll) { p.Preset = "sap" }), `source "p": poll.preset "sap" is not one of afas, workday`},
		{"format", valid(func(p *source.Poll) { p.Format = "xml" }), `source "p": poll.format "xml" is not json or csv`},
		{"basic without user", valid(func(p *source.Poll) { p.Auth.Scheme = "basic" }), `source "p": poll.auth.user is required with auth scheme basic`},
		{"header without name", valid(func(p *source.Poll) { p.Auth.Scheme = "header" }), `source "p": poll.auth.header names the header of auth scheme header (e.g. X-API-Key)`},
		{"no secret", valid(func(p *source.Poll) { p.Auth.Secret = "" }), `source "p" needs the endpoint's token or password in secrets`},
		{"cursor without modified field", valid(func(p *source.Poll) { p.ChangedSince.Param = "since" }), `source "p": poll.modifiedField is required with changedSince: it is the cursor`},
		{"afas without modified field", valid(func(p *source.Poll) { p.Preset = "afas" }), `source "p": poll.modifiedField is required with preset afas (the connector's modified date-time field)`},
		{"bad cursor format", valid(func(p *source.Poll) {
			p.ChangedSince.Param, p.ModifiedField, p.ChangedSince.Format = "since", "m", "YYYY-MM-DD"
		}),
			`source "p": poll.changedSince.format "YYYY-MM-DD" is not unix, unixms or a Go time layout such as 2006-01-02T15:04:05`},
		{"next without member", valid(func(p *source.Poll) { p.Paging.Mode = "next" }), `source "p": poll.paging.next names the answer's member holding the next page's URL`},
		{"paging mode", valid(func(p *source.Poll) { p.Paging.Mode = "cursor" }), `source "p": poll.paging.mode "cursor" is not one of offset, next, none`},
		{"interval", valid(func(p *source.Poll) { p.Interval = time.Millisecond }), `source "p": poll.interval 1ms is shorter than 1s`},
		{"full sync", valid(func(p *source.Poll) { p.Interval, p.FullSyncEvery = time.Hour, time.Minute }), `source "p": poll.fullSyncEvery 1m0s is shorter than the interval 1h0m0s`},
		{"query clash", valid(func(p *source.Poll) { p.Preset, p.ModifiedField, p.Query = "afas", "m", map[string]string{"skip": "5"} }),
			`source "p": poll.query sets "skip", which the poller sets itself`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.config.Validate()
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v\nwant    %s", err, tc.want)
			}
		})
	}
}
