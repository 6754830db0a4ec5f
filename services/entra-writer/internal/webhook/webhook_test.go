package webhook

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("a shared key of thirty-two bytes"))

// receiver is a ticketing endpoint that verifies each request with the Standard Webhooks library
// and answers with status.
type receiver struct {
	mu       sync.Mutex
	status   int
	verified []map[string]any
	refused  []error
	ids      []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	verifier, _ := standardwebhooks.NewWebhook(testSecret)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := verifier.Verify(body, req.Header); err != nil {
		r.refused = append(r.refused, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var decoded map[string]any
	_ = json.Unmarshal(body, &decoded)
	r.verified = append(r.verified, decoded)
	r.ids = append(r.ids, req.Header.Get(standardwebhooks.HeaderWebhookID))
	w.WriteHeader(r.status)
}

func firstDayPass() writer.FirstDayPass {
	start := time.Date(2026, 6, 22, 7, 0, 0, 0, time.UTC)
	return writer.FirstDayPass{WorkerID: "E1", UserPrincipalName: "jane.doe@corp.example.com", ManagerWorkerID: "M1",
		FirstDayAt: start.Add(-7 * time.Hour), Pass: directory.AccessPass{ID: "pass-1", Secret: directory.NewSecret("Q7#xk2Lp"), Start: start, LifetimeMinutes: 480, IsUsableOnce: true}}
}

func TestDeliverFirstDayPass(t *testing.T) {
	t.Run("signed as Standard Webhooks, the pass in the body", func(t *testing.T) {
		endpoint := &receiver{status: http.StatusAccepted}
		srv := httptest.NewServer(endpoint)
		t.Cleanup(srv.Close)
		sender, err := New("servicedesk", srv.URL, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if err := sender.DeliverFirstDayPass(t.Context(), firstDayPass()); err != nil {
			t.Fatalf("delivery: %v", err)
		}
		if len(endpoint.verified) != 1 || len(endpoint.refused) != 0 {
			t.Fatalf("verified %d, refused %v; want one verified request", len(endpoint.verified), endpoint.refused)
		}
		got := endpoint.verified[0]
		data, _ := got["data"].(map[string]any)
		if got["type"] != EventType || data["temporary_access_pass"] != "Q7#xk2Lp" || data["worker_id"] != "E1" || data["manager_worker_id"] != "M1" ||
			data["expires_at"] != "2026-06-22T15:00:00Z" || data["is_usable_once"] != true {
			t.Errorf("payload %v", got)
		}
		if endpoint.ids[0] != "tap_pass-1" {
			t.Errorf("webhook-id %q, want tap_pass-1", endpoint.ids[0])
		}
	})

	t.Run("a wrong secret does not verify", func(t *testing.T) {
		endpoint := &receiver{status: http.StatusOK}
		srv := httptest.NewServer(endpoint)
		t.Cleanup(srv.Close)
		other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key, also thirty-two by"))
		sender, err := New("servicedesk", srv.URL, other)
		if err != nil {
			t.Fatal(err)
		}
		err = sender.DeliverFirstDayPass(t.Context(), firstDayPass())
		if directory.ClassOf(err) != directory.ClassInvalid || len(endpoint.refused) != 1 {
			t.Errorf("delivery with a wrong secret: %v (refused %d); want invalid (not forbidden, which pauses the writer), refused once", err, len(endpoint.refused))
		}
	})

	for _, tc := range []struct {
		status int
		want   directory.Class
	}{
		{http.StatusBadRequest, directory.ClassInvalid},
		{http.StatusTooManyRequests, directory.ClassThrottled},
		{http.StatusServiceUnavailable, directory.ClassTransient},
	} {
		t.Run("answered "+http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(&receiver{status: tc.status})
			t.Cleanup(srv.Close)
			sender, err := New("servicedesk", srv.URL, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			err = sender.DeliverFirstDayPass(t.Context(), firstDayPass())
			if directory.ClassOf(err) != tc.want {
				t.Errorf("error %v, want class %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "Q7#xk2Lp") {
				t.Errorf("the error holds the pass: %v", err)
			}
		})
	}

	t.Run("an unreachable endpoint is transient and its error holds no pass", func(t *testing.T) {
		srv := httptest.NewServer(&receiver{status: http.StatusOK})
		srv.Close()
		sender, err := New("servicedesk", srv.URL, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		err = sender.DeliverFirstDayPass(t.Context(), firstDayPass())
		if directory.ClassOf(err) != directory.ClassTransient || strings.Contains(err.Error(), "Q7#xk2Lp") {
			t.Errorf("error %v, want transient without the pass", err)
		}
	})

	t.Run("a secret that is not base64 is refused without being shown", func(t *testing.T) {
		_, err := New("servicedesk", "https://tickets.example.com", "whsec_not base64!")
		if err == nil || strings.Contains(err.Error(), "not base64!") {
			t.Errorf("New with a bad secret: %v", err)
		}
	})
}
