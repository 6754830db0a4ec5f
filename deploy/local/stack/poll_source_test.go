package stack_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/deploy/local/stack"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

// TestPollFullPullJudgesOnlyItsOwnSource runs a poll source against a fake AFAS GetConnector
// through the whole pipeline: its workers get accounts; a worker deleted in AFAS is disabled
// after the next full pull (published as a snapshot of that source, judged by org-model like a
// CSV export); a worker hired through the canonical webhook source ("local"), absent from every
// AFAS pull, stays enabled.
func TestPollFullPullJudgesOnlyItsOwnSource(t *testing.T) {
	const token = "AFAS0123456789"
	afas := vendortest.NewAFAS(t, "Orgsync_Employees", vendortest.AFASToken(token),
		"Medewerker", "Roepnaam", "Achternaam", "Afdeling", "Begindatum", "Gewijzigd")
	afas.Put(map[string]any{"Medewerker": "A1", "Roepnaam": "Anna", "Achternaam": "Een", "Afdeling": "sales", "Begindatum": "2026-01-05", "Gewijzigd": "2026-01-04T09:00:00Z"})
	afas.Put(map[string]any{"Medewerker": "A2", "Roepnaam": "Bram", "Achternaam": "Twee", "Afdeling": "sales", "Begindatum": "2026-01-05", "Gewijzigd": "2026-01-04T09:05:00Z"})

	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{
		StoreDir: t.TempDir(),
		Sources: []hringest.SourceConfig{{Name: "afas", Kind: hringest.KindPoll, Poll: hringest.SourcePoll{
			Preset: "afas", URL: afas.ConnectorURL(), ModifiedField: "Gewijzigd",
			Auth:     hringest.SourcePollAuth{Secret: token},
			Fields:   map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam", "orgUnitId": "Afdeling", "startDate": "Begindatum"},
			Interval: time.Second, FullSyncEvery: 2 * time.Second,
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{}
	if resp, body, err := stack.Post(ctx, client, s.WebhookURL(), "unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"})); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("unit webhook: %v %s", err, body)
	}
	if resp, body, err := stack.Post(ctx, client, s.WebhookURL(), "hire-e1001", hire); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("hire webhook: %v %s", err, body)
	}

	enabled := func() map[string]bool {
		out := map[string]bool{}
		for _, id := range []string{"E1001", "A1", "A2"} {
			if user, ok := s.Emulator.UserByEmployeeID(id); ok {
				out[id], _ = user["accountEnabled"].(bool)
			}
		}
		return out
	}
	want := map[string]bool{"E1001": true, "A1": true, "A2": true}
	waitFor(t, func() bool { return cmp.Equal(want, enabled()) })
	if diff := cmp.Diff(want, enabled()); diff != "" {
		t.Fatalf("after the first pull (-want +got):\n%s", diff)
	}

	// A2 leaves AFAS without a change record: only a full pull can tell.
	afas.Delete("A2")
	want = map[string]bool{"E1001": true, "A1": true, "A2": false}
	waitFor(t, func() bool { return cmp.Equal(want, enabled()) })
	if diff := cmp.Diff(want, enabled()); diff != "" {
		t.Errorf("after a full pull without A2 and without the webhook source's worker (-want +got):\n%s", diff)
	}
}
