package graph

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scriptedTransport answers with the statuses given, in turn, and records each body it was sent.
type scriptedTransport struct {
	answers []answer
	bodies  []string
}

type answer struct {
	status     int
	retryAfter string
}

func (s *scriptedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	s.bodies = append(s.bodies, string(body))
	next := s.answers[min(len(s.bodies), len(s.answers))-1]
	header := http.Header{}
	if next.retryAfter != "" {
		header.Set("Retry-After", next.retryAfter)
	}
	return &http.Response{StatusCode: next.status, Header: header, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func TestRetryTransport(t *testing.T) {
	for _, tc := range []struct {
		name       string
		method     string
		answers    []answer
		wantTries  int
		wantStatus int
	}{
		{"a create throttled with no wait is sent again with the same body", http.MethodPost, []answer{{429, "0"}, {201, ""}}, 2, 201},
		{"an unavailable service is asked twice at most", http.MethodPost, []answer{{503, ""}, {503, ""}, {201, ""}}, 2, 503},
		{"a Retry-After goes back to the writer", http.MethodPatch, []answer{{429, "1"}, {204, ""}}, 1, 429},
		{"a create answered 500 may have happened and is not repeated", http.MethodPost, []answer{{500, ""}, {201, ""}}, 1, 500},
		{"an idempotent update answered 500 is repeated", http.MethodPatch, []answer{{500, ""}, {204, ""}}, 2, 204},
		{"a read answered 504 is repeated", http.MethodGet, []answer{{504, ""}, {200, ""}}, 2, 200},
		{"a create answered 504 is not repeated", http.MethodPost, []answer{{504, ""}, {201, ""}}, 1, 504},
		{"a refusal is not retried", http.MethodPost, []answer{{400, ""}, {201, ""}}, 1, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &scriptedTransport{answers: tc.answers}
			body := "\x1f\x8b compressed request body"
			var reqBody io.Reader
			if tc.method != http.MethodGet {
				reqBody = bytes.NewReader([]byte(body))
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, "http://127.0.0.1/v1.0/users", reqBody)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := RetryTransport{Base: base}.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if len(base.bodies) != tc.wantTries {
				t.Fatalf("sent %d times, want %d", len(base.bodies), tc.wantTries)
			}
			if tc.method == http.MethodGet {
				return
			}
			want := make([]string, tc.wantTries)
			for i := range want {
				want[i] = body
			}
			if d := cmp.Diff(want, base.bodies); d != "" {
				t.Errorf("bodies sent (-want +got):\n%s", d)
			}
		})
	}
}
