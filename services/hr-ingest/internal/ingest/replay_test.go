package ingest

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
)

// TestParkedNotificationsReplay: a notification parked because the vendor did not know the
// employee is, once the cause is fixed and an operator replays it, fetched and published; the
// parked count goes back to zero.
func TestParkedNotificationsReplay(t *testing.T) {
	for _, vendor := range vendors(t) {
		t.Run(vendor.name, func(t *testing.T) {
			f := newPullFixture(t, vendor.source("hr", true))
			for _, id := range []string{"2001", "2002"} {
				if rec := f.do(t, vendor.notification(t, "hr", id, false, true)); rec.Code != http.StatusAccepted {
					t.Fatalf("status %d, want 202: %s", rec.Code, rec.Body)
				}
			}
			eventually(t, "both notifications are parked", func() bool { return f.status(t, "hr").Parked == 2 })

			vendor.hire("2001")
			replayed, err := f.fetcher.Replay(t.Context(), "hr", "2001")
			if err != nil || replayed != 1 {
				t.Fatalf("replay of 2001 = %d, %v; want 1", replayed, err)
			}
			eventually(t, "the replayed worker's event is in stream HR", func() bool { return len(f.storedEvents(t)) == 1 })
			if diff := cmp.Diff([]*orgsyncv1.Worker{vendor.worker("2001")}, f.workers(t), protocmp.Transform()); diff != "" {
				t.Errorf("workers (-want +got):\n%s", diff)
			}
			// The fetch acknowledges its notification just after publishing the event.
			eventually(t, "2002 still parked and nothing pending", func() bool { s := f.status(t, "hr"); return s.Parked == 1 && s.Pending == 0 })

			// Replaying without fixing the cause parks it again, once.
			replayed, err = f.fetcher.Replay(t.Context(), "hr", "")
			if err != nil || replayed != 1 {
				t.Fatalf("replay of the rest = %d, %v; want 1", replayed, err)
			}
			eventually(t, "2002 is parked again", func() bool { s := f.status(t, "hr"); return s.Parked == 1 && s.Pending == 0 })
			if got := len(f.storedEvents(t)); got != 1 {
				t.Errorf("stream HR holds %d events, want 1", got)
			}

			if _, err := f.fetcher.Replay(t.Context(), "nope", ""); !errors.Is(err, notify.ErrUnknownSource) {
				t.Errorf("replay of an unknown source: %v, want ErrUnknownSource", err)
			}
		})
	}
}
