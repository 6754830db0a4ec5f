package upload

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCSVRetriesThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	var keys sync.Map // Idempotency-Key → true: every try of one upload carries the same key
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		keys.Store(r.Header.Get("Idempotency-Key"), true)
		if r.URL.Path != "/v1/sources/export/snapshots" || r.Header.Get("Authorization") != "Bearer tok" || string(body) != "a,b\n" || r.Header.Get("Content-Type") != "text/csv" {
			t.Errorf("request %s %q %q %q", r.URL.Path, r.Header.Get("Authorization"), body, r.Header.Get("Content-Type"))
		}
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 3:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusConflict) // another snapshot of the source is open
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"snapshotId":"snap-1","recordCount":1,"duplicates":2,"eventIds":["x"]}`))
		}
	}))
	defer srv.Close()
	got, err := CSV(t.Context(), []byte("a,b\n"), Options{BaseURL: srv.URL + "/", Source: "export", Token: "tok", MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{SnapshotID: "snap-1", RecordCount: 1, Duplicates: 2}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if calls.Load() != 4 {
		t.Errorf("%d calls, want 4", calls.Load())
	}
	var seen []string
	keys.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	if len(seen) != 1 || len(seen[0]) != 32 {
		t.Errorf("Idempotency-Keys sent: %q, want one random key for every try", seen)
	}
}

func TestCSVGivesUp(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		attempts   int
		wantCalls  int32
		wantStatus int
	}{
		{name: "rejection is not retried", status: http.StatusBadRequest, attempts: 3, wantCalls: 1, wantStatus: 400},
		{name: "unavailable until the last attempt", status: http.StatusServiceUnavailable, attempts: 3, wantCalls: 3, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			_, err := CSV(t.Context(), []byte("x"), Options{BaseURL: srv.URL, Source: "s", Token: "t", Attempts: tt.attempts, MaxWait: time.Millisecond})
			var rejected *Error
			if !errors.As(err, &rejected) || rejected.Status != tt.wantStatus || calls.Load() != tt.wantCalls {
				t.Errorf("err = %v after %d calls", err, calls.Load())
			}
		})
	}
}
