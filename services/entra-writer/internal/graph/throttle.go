package graph

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Throttle is Graph's throttling state for the app and tenant, shared by every replica where it
// lives in Redis (budget.SharedPause): Graph throttles per app and tenant, so a 429 that asks for
// a wait pauses every call, not only the request that got it.
type Throttle interface {
	// Remaining returns how long calls are still paused; zero when they may go.
	Remaining(ctx context.Context) (time.Duration, error)
	// Pause pauses every call for d from now; a longer pause already set stands.
	Pause(ctx context.Context, d time.Duration) error
}

// ThrottleTransport keeps calls out of a Retry-After window. Before a call it asks the Throttle:
// while paused, the call is not sent but answered here as Graph would answer it — 429
// TooManyRequests with the time left in Retry-After — so the writer sends that message back to
// the stream for as long, exactly as after Graph's own 429, and nothing waits in place. After a
// call, a 429 whose Retry-After asks for a wait sets the pause for every replica. Only a 429:
// Graph's throttling "limits any further requests from that client app for some time", while a
// 503 is the service unavailable for that request ("you may repeat the request after a delay"),
// so a 503's Retry-After delays only its own message (see the writer's retryDelay). If the
// Throttle cannot be read (Redis down), the call goes: Graph still throttles, and a writer that
// stopped on Redis would stop on a cache.
type ThrottleTransport struct {
	Base     http.RoundTripper
	Throttle Throttle
}

// RoundTrip implements http.RoundTripper.
func (t ThrottleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if left, err := t.Throttle.Remaining(req.Context()); err == nil && left > 0 {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return throttledHere(req, left), nil
	}
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok && wait > 0 {
			_ = t.Throttle.Pause(req.Context(), wait)
		}
	}
	return resp, nil
}

// throttledHere is the answer to a call kept out of a Retry-After window: Graph's 429, with the
// time left rounded up to whole seconds.
func throttledHere(req *http.Request, left time.Duration) *http.Response {
	seconds := strconv.Itoa(int((left + time.Second - 1) / time.Second))
	body := `{"error":{"code":"TooManyRequests","message":"Not sent: the app is throttled for ` + seconds +
		` more seconds (an earlier answer's Retry-After)."}}`
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("Retry-After", seconds)
	return &http.Response{
		Status: "429 Too Many Requests", StatusCode: http.StatusTooManyRequests,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}
