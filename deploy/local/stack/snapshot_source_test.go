package stack_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/deploy/local/stack"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
)

const (
	csvSource = "payroll-export"
	csvToken  = "csv-bearer-token-0123456789abcdef"
)

// TestCSVSnapshotJudgesOnlyItsOwnSource: a worker hired through the canonical webhook source
// ("local") is not in source payroll-export's full CSV export, and stays enabled; a worker of the
// CSV source missing from its next export is disabled.
func TestCSVSnapshotJudgesOnlyItsOwnSource(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{
		StoreDir: t.TempDir(),
		Sources:  []hringest.SourceConfig{{Name: csvSource, Kind: hringest.KindCSV, Tokens: []string{csvToken}}},
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
	if resp, body, err := stack.Post(ctx, client, s.WebhookURL(), "hire-y1", hire); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("hire webhook: %v %s", err, body)
	}
	postCSV := func(csv string) {
		t.Helper()
		url := "http://" + s.HRIngest.HTTPAddr() + "/v1/sources/" + csvSource + "/snapshots"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(csv)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+csvToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("CSV snapshot: %d %s", resp.StatusCode, body)
		}
	}
	const header = "workerId,givenName,familyName,orgUnitId,employmentStatus,startDate\n"
	postCSV(header + "X1,Xena,One,sales,active,2026-01-05\nX2,Xavier,Two,sales,active,2026-01-05\n")

	enabled := func() map[string]bool {
		out := map[string]bool{}
		for _, id := range []string{"E1001", "X1", "X2"} {
			if user, ok := s.Emulator.UserByEmployeeID(id); ok {
				out[id], _ = user["accountEnabled"].(bool)
			}
		}
		return out
	}
	want := map[string]bool{"E1001": true, "X1": true, "X2": true}
	waitFor(t, func() bool { return cmp.Equal(want, enabled()) })
	if diff := cmp.Diff(want, enabled()); diff != "" {
		t.Fatalf("after the first export (-want +got):\n%s", diff)
	}

	// The next export no longer lists X2: X2 is disabled; E1001, of another source, is untouched.
	postCSV(header + "X1,Xena,One,sales,active,2026-01-05\n")
	want = map[string]bool{"E1001": true, "X1": true, "X2": false}
	waitFor(t, func() bool { return cmp.Equal(want, enabled()) })
	if diff := cmp.Diff(want, enabled()); diff != "" {
		t.Errorf("after an export without X2 and without the webhook source's worker (-want +got):\n%s", diff)
	}
}
