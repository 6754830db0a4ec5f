package graph

import (
	"bytes"
	"io"
	"net/http"
)

// RetryTransport sends a Graph request once more, at once, when Graph refused it without
// processing it and asked for no wait — 429 or 503 with no Retry-After or Retry-After: 0 — and,
// for methods that are idempotent (GET, PUT, PATCH, DELETE), when it answered 500 or 504. A POST
// answered 500 or 504 may have been applied (a create would be made twice), so it is left to the
// writer, which looks before it creates again.
//
// It never waits: the writer applies a batch's objects one after another, so a wait here would
// hold up the whole batch, while a message sent back to the stream with a delay holds up nothing.
// It sits beneath the SDK's middleware, where the body is final (gzip-compressed): it keeps the
// bytes and sends them again, which is what kiota-http-go's own retry handler fails to do (see
// docs/entra-writer.md).
type RetryTransport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	send := func() (*http.Response, error) {
		attempt := req
		if body != nil {
			attempt = req.Clone(req.Context())
			attempt.Body = io.NopCloser(bytes.NewReader(body))
			attempt.ContentLength = int64(len(body))
			attempt.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		return t.Base.RoundTrip(attempt)
	}
	resp, err := send()
	if err != nil || !resendAtOnce(req.Method, resp) {
		return resp, err
	}
	// The answer is dropped for the next one; read it out so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return send()
}

// resendAtOnce says whether resp may be answered by sending its request again right away.
func resendAtOnce(method string, resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		wait, _ := parseRetryAfter(resp.Header.Get("Retry-After"))
		return wait == 0
	case http.StatusInternalServerError, http.StatusGatewayTimeout:
		return method != http.MethodPost
	}
	return false
}
