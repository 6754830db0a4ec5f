package personio_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

func TestVerify(t *testing.T) {
	v := personio.NewVerifier([][]byte{[]byte("Bearer old-token-0123456789"), []byte("Bearer new-token-0123456789")})
	tests := []struct {
		name, header string
		want         error
	}{
		{"the old token while rotating", "Bearer old-token-0123456789", nil},
		{"the new token", "Bearer new-token-0123456789", nil},
		{"missing", "", personio.ErrMissingToken},
		{"another token", "Bearer someone-else", personio.ErrNoMatch},
		{"the token without its prefix", "new-token-0123456789", personio.ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.header != "" {
				header.Set("Authorization", tt.header)
			}
			if err := v.Verify(header); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseWebhook(t *testing.T) {
	tests := []struct {
		name, body, wantPerson, wantPointer string
		leaves                              bool
	}{
		{name: "person updated", body: `{"company_id":"1","event_name":"person.updated","occurred_at":"2026-03-01T08:59:00Z","payload":{"id":"12345"}}`, wantPerson: "12345"},
		{name: "person deleted, numeric id", body: `{"company_id":1,"event_name":"person.deleted","occurred_at":"2026-03-01T08:59:00Z","payload":{"id":12345}}`, wantPerson: "12345", leaves: true},
		{name: "employment updated", body: `{"company_id":"1","event_name":"employment.updated","occurred_at":"2026-03-01T08:59:00Z","payload":{"id":"e-1","person":{"id":"777"}}}`, wantPerson: "777"},
		{name: "another event", body: `{"company_id":"1","event_name":"absence_period.created","occurred_at":"2026-03-01T08:59:00Z","payload":{"id":"a"}}`, wantPointer: "/event_name"},
		{name: "no person", body: `{"company_id":"1","event_name":"person.created","occurred_at":"2026-03-01T08:59:00Z","payload":{}}`, wantPointer: "/payload/id"},
		{name: "bad time", body: `{"company_id":"1","event_name":"person.created","occurred_at":"yesterday","payload":{"id":"1"}}`, wantPointer: "/occurred_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := personio.ParseWebhook([]byte(tt.body))
			if tt.wantPointer != "" {
				var invalid *normalize.InvalidError
				if !errors.As(err, &invalid) || !strings.Contains(fmt.Sprint(invalid.Fields), tt.wantPointer) {
					t.Fatalf("err = %v, want an invalid field at %s", err, tt.wantPointer)
				}
				return
			}
			if err != nil || w.PersonID != tt.wantPerson || w.Leaves() != tt.leaves {
				t.Errorf("webhook = %+v, %v; want person %s, leaves %v", w, err, tt.wantPerson, tt.leaves)
			}
		})
	}
	if _, err := personio.ParseWebhook([]byte(`not json`)); !errors.As(err, new(*normalize.SyntaxError)) {
		t.Errorf("not JSON: %v, want a syntax error", err)
	}
}

func TestClient(t *testing.T) {
	fake := vendortest.NewPersonio(t, "client-id-0123", "client-secret-0123456789")
	var employments []map[string]any
	for i := range 60 { // more than one page of 50
		employments = append(employments, map[string]any{"id": fmt.Sprint("emp-", i), "status": "INACTIVE", "start_date": "2019-01-01"})
	}
	employments[0] = map[string]any{"id": "emp-now", "status": "ACTIVE", "start_date": "2026-02-01", "position": map[string]any{"title": "Engineer"}}
	fake.Put("9", map[string]any{"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com"}, employments...)
	client := personio.NewClient(fake.BaseURL(), "client-id-0123", "client-secret-0123456789", nil, nil)

	t.Run("maps the person and their most recent employment", func(t *testing.T) {
		event, err := client.Fetch(t.Context(), "9")
		if err != nil {
			t.Fatal(err)
		}
		w := event.GetWorker()
		if w.GetJobTitle() != "Engineer" || w.GetStartDate().GetYear() != 2026 || w.GetName().GetGivenName() != "Jane" {
			t.Errorf("worker = %v", w)
		}
	})
	t.Run("the token is reused, and asked again once when the API refuses it", func(t *testing.T) {
		before := fake.TokenRequests()
		if _, err := client.Fetch(t.Context(), "9"); err != nil {
			t.Fatal(err)
		}
		if got := fake.TokenRequests() - before; got != 0 {
			t.Errorf("%d token requests for a second fetch, want 0", got)
		}
		fake.RevokeTokens()
		if _, err := client.Fetch(t.Context(), "9"); err != nil {
			t.Fatalf("after the token was revoked: %v", err)
		}
		if got := fake.TokenRequests() - before; got != 1 {
			t.Errorf("%d token requests after a revoked token, want 1", got)
		}
	})
	t.Run("wrong credentials are unauthorized, an unknown person not found", func(t *testing.T) {
		bad := personio.NewClient(fake.BaseURL(), "client-id-0123", "wrong-secret-0123456789", nil, nil)
		if _, err := bad.Fetch(t.Context(), "9"); !errors.Is(err, notify.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("err = %v, want ErrUnauthorized without the secret", err)
		}
		if _, err := client.Fetch(t.Context(), "404"); !errors.Is(err, notify.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestWriterClassifiesRefusals(t *testing.T) {
	fake := vendortest.NewPersonio(t, "client-id-0123", "client-secret-0123456789")
	fake.AddCustomAttribute("dynamic_1")
	fake.Put("1", map[string]any{"first_name": "A", "last_name": "B", "email": "a@example.com"})
	fake.Put("2", map[string]any{"first_name": "C", "last_name": "D", "email": "taken@example.com"})
	good := personio.NewClient(fake.BaseURL(), "client-id-0123", "client-secret-0123456789", nil, nil)
	bad := personio.NewClient(fake.BaseURL(), "client-id-0123", "wrong-secret-0123456789", nil, nil)
	tests := []struct {
		name   string
		writer *personio.Writer
		person string
		values writeback.Values
		want   error
	}{
		{"written", personio.NewWriter(good, "dynamic_1"), "1", writeback.Values{UPN: "a@corp.example.com"}, nil},
		{"an unknown custom attribute is refused", personio.NewWriter(good, "dynamic_9"), "1", writeback.Values{UPN: "a@corp.example.com"}, writeback.ErrRejected},
		{"an e-mail another person has is refused", personio.NewWriter(good, "dynamic_1"), "1", writeback.Values{Mail: "taken@example.com"}, writeback.ErrRejected},
		{"an unknown person is refused", personio.NewWriter(good, "dynamic_1"), "404", writeback.Values{Mail: "x@example.com"}, writeback.ErrRejected},
		{"wrong credentials", personio.NewWriter(bad, "dynamic_1"), "1", writeback.Values{Mail: "a@example.com"}, writeback.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.writer.Write(t.Context(), tt.person, tt.values)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Write = %v, want %v", err, tt.want)
			}
		})
	}
}
