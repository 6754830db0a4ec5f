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

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
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

func TestDeliverHelpdeskCredential(t *testing.T) {
	start := time.Date(2026, 6, 23, 9, 30, 0, 0, time.UTC)
	base := writer.HelpdeskCredential{WorkerID: "E1", UserPrincipalName: "jane.doe@corp.example.com", ManagerWorkerID: "M1",
		AccessRequestID: "r-42", Reason: "INC-4711 locked out"}
	tests := []struct {
		name     string
		kind     orgsyncv1.HelpdeskCredentialKind
		fill     func(*writer.HelpdeskCredential)
		secret   string
		wantID   string
		wantData map[string]any
	}{
		{
			name: "temporary access pass", kind: orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_TEMPORARY_ACCESS_PASS,
			fill: func(c *writer.HelpdeskCredential) {
				c.Pass = directory.AccessPass{ID: "pass-9", Secret: directory.NewSecret("Hd#4pass"), Start: start, LifetimeMinutes: 60, IsUsableOnce: true}
				c.DeliveryID = "tap_pass-9"
			},
			secret: "Hd#4pass", wantID: "tap_pass-9",
			wantData: map[string]any{"worker_id": "E1", "user_principal_name": "jane.doe@corp.example.com", "manager_worker_id": "M1",
				"access_request_id": "r-42", "kind": KindTemporaryAccessPass, "reason": "INC-4711 locked out", "temporary_access_pass": "Hd#4pass",
				"valid_from": "2026-06-23T09:30:00Z", "expires_at": "2026-06-23T10:30:00Z", "is_usable_once": true},
		},
		{
			name: "password reset", kind: orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET,
			fill: func(c *writer.HelpdeskCredential) {
				c.Password, c.DeliveryID = directory.NewSecret("N3w-Pa55word!x"), "pwd_0123456789abcdef"
			},
			secret: "N3w-Pa55word!x", wantID: "pwd_0123456789abcdef",
			wantData: map[string]any{"worker_id": "E1", "user_principal_name": "jane.doe@corp.example.com", "manager_worker_id": "M1",
				"access_request_id": "r-42", "kind": KindPasswordReset, "reason": "INC-4711 locked out", "password": "N3w-Pa55word!x",
				"force_change_password_next_sign_in": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			credential := base
			credential.Kind = tt.kind
			tt.fill(&credential)
			endpoint := &receiver{status: http.StatusOK}
			srv := httptest.NewServer(endpoint)
			t.Cleanup(srv.Close)
			sender, err := New("servicedesk", srv.URL, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			if err := sender.DeliverHelpdeskCredential(t.Context(), credential); err != nil {
				t.Fatalf("delivery: %v", err)
			}
			if len(endpoint.verified) != 1 {
				t.Fatalf("verified %d, refused %v; want one verified request", len(endpoint.verified), endpoint.refused)
			}
			got := endpoint.verified[0]
			if got["type"] != HelpdeskEventType || endpoint.ids[0] != tt.wantID {
				t.Errorf("type %v, webhook-id %q; want %s, %s", got["type"], endpoint.ids[0], HelpdeskEventType, tt.wantID)
			}
			if diff := cmp.Diff(tt.wantData, got["data"]); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}

			refusing := httptest.NewServer(&receiver{status: http.StatusBadRequest})
			t.Cleanup(refusing.Close)
			sender, err = New("servicedesk", refusing.URL, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			err = sender.DeliverHelpdeskCredential(t.Context(), credential)
			if directory.ClassOf(err) != directory.ClassInvalid || strings.Contains(err.Error(), tt.secret) {
				t.Errorf("refused delivery: %v, want invalid without the secret", err)
			}
		})
	}

	t.Run("refused without a delivery id or a kind, nothing sent", func(t *testing.T) {
		endpoint := &receiver{status: http.StatusOK}
		srv := httptest.NewServer(endpoint)
		t.Cleanup(srv.Close)
		sender, err := New("servicedesk", srv.URL, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		noID := base
		noID.Kind, noID.Password = orgsyncv1.HelpdeskCredentialKind_HELPDESK_CREDENTIAL_KIND_PASSWORD_RESET, directory.NewSecret("N3w-Pa55word!x")
		noKind := base
		noKind.DeliveryID = "pwd_1"
		for _, credential := range []writer.HelpdeskCredential{noID, noKind} {
			if err := sender.DeliverHelpdeskCredential(t.Context(), credential); directory.ClassOf(err) != directory.ClassInvalid {
				t.Errorf("delivery of %+v: %v, want invalid", credential, err)
			}
		}
		if len(endpoint.verified)+len(endpoint.refused) != 0 {
			t.Errorf("%d requests reached the endpoint", len(endpoint.verified)+len(endpoint.refused))
		}
	})
}
