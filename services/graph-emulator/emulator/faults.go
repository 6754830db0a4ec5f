package emulator

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Faults are the failures a Server injects, to test clients the way Graph tests them.
type Faults struct {
	// ThrottleRate is the share of requests answered 429 TooManyRequests with Retry-After, before
	// they are applied.
	ThrottleRate float64
	// RetryAfter is the advised delay of a 429 or 503, sent in whole seconds (0 is a valid value).
	RetryAfter time.Duration
	// ServerErrorRate is the share of requests answered 503 or 500 before they are applied.
	ServerErrorRate float64
	// LostAnswerRate is the share of writes that are applied but answered 500 all the same, as
	// when a gateway times out after the directory committed: a client must not duplicate them.
	LostAnswerRate float64
	// ReplicationLag hides a new user or group from reads, lookups and references for this long
	// after its creation (Graph answers 404 Request_ResourceNotFound meanwhile).
	ReplicationLag time.Duration
	// Latency delays every answer.
	Latency time.Duration
	// WriteQuota, when positive, answers 429 to writes beyond this many per QuotaWindow, with
	// Retry-After until the window ends — Graph's per-app write quota in miniature.
	WriteQuota  int
	QuotaWindow time.Duration
	// HoldThrottle keeps refusing calls, with 429 and the time left in Retry-After, until the
	// Retry-After of the last 429 or 503 has passed, as Graph does: a throttled app that calls
	// again early is refused again (and the early calls count against it). Without it only the
	// calls are counted (Stats.CallsInRetryAfterWindow).
	HoldThrottle bool
	// CredentialsRevoked answers every request 401 InvalidAuthenticationToken, as Graph does once
	// an app's secret is revoked or expired.
	CredentialsRevoked bool
	// Seed makes the sequence of injected faults repeatable; 0 picks a random one.
	Seed uint64
}

// WithFaults makes the Server inject faults from the start.
func WithFaults(f Faults) Option {
	return func(s *Server) { s.faults.set(f) }
}

// SetFaults changes the injected faults; Faults{} stops them.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// faultInjector decides, request by request, whether to fail. It is safe for concurrent use.
type faultInjector struct {
	mu      sync.Mutex
	faults  Faults
	random  *rand.Rand
	created map[string]time.Time // object id → creation time, kept while ReplicationLag > 0
	// windowStart and windowWrites count writes in the current quota window.
	windowStart  time.Time
	windowWrites int
	// throttledUntil is when the Retry-After of the last 429 or 503 ends; callsInWindow counts the
	// calls that arrived before it.
	throttledUntil time.Time
	callsInWindow  int
}

func newFaultInjector() *faultInjector {
	return &faultInjector{random: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), created: map[string]time.Time{}}
}

func (f *faultInjector) set(faults Faults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faults
	if faults.Seed != 0 {
		f.random = rand.New(rand.NewPCG(faults.Seed, faults.Seed))
	}
}

func (f *faultInjector) roll(rate float64) bool {
	return rate > 0 && f.random.Float64() < rate
}

// before may refuse a request before it is applied. batchItem says the request is an item of a
// $batch, which arrived with its envelope: only whole calls count as calls inside a Retry-After
// window.
func (f *faultInjector) before(r *http.Request, batchItem bool) (err error) {
	f.mu.Lock()
	faults := f.faults
	now := time.Now()
	held := !batchItem && now.Before(f.throttledUntil)
	if held {
		f.callsInWindow++
	}
	throttle := f.roll(faults.ThrottleRate)
	serverError := !throttle && f.roll(faults.ServerErrorRate)
	unavailable := f.random.IntN(2) == 0
	overQuota, quotaRetry := f.chargeQuota(r.Method)
	left := f.throttledUntil.Sub(now)
	f.mu.Unlock()
	defer func() { f.startWindow(err, now) }()
	if held && faults.HoldThrottle {
		seconds := strconv.Itoa(int((left + time.Second - 1) / time.Second))
		return newAPIError(http.StatusTooManyRequests, CodeTooManyRequests,
			"Too many requests. Retry after %s seconds.", seconds).
			withHeader("Retry-After", seconds).
			withHeader("x-ms-throttle-limit-percentage", "1.0").
			withHeader("x-ms-throttle-scope", "Tenant_Application/WriteRequests")
	}
	if faults.Latency > 0 {
		select {
		case <-time.After(faults.Latency):
		case <-r.Context().Done():
		}
	}
	switch {
	case faults.CredentialsRevoked:
		return newAPIError(http.StatusUnauthorized, CodeInvalidAuthenticationToken, "Access token validation failure. Invalid audience.")
	case overQuota:
		seconds := strconv.Itoa(int((quotaRetry + time.Second - 1) / time.Second))
		return newAPIError(http.StatusTooManyRequests, CodeTooManyRequests,
			"Too many requests. The application's write quota is used up; retry after %s seconds.", seconds).
			withHeader("Retry-After", seconds).
			withHeader("x-ms-throttle-limit-percentage", "1.0").
			withHeader("x-ms-throttle-scope", "Tenant_Application/WriteRequests")
	case throttle:
		seconds := strconv.Itoa(int(faults.RetryAfter / time.Second))
		return newAPIError(http.StatusTooManyRequests, CodeTooManyRequests,
			"Too many requests. Retry after %s seconds.", seconds).
			withHeader("Retry-After", seconds).
			withHeader("x-ms-throttle-limit-percentage", "1.0").
			withHeader("x-ms-throttle-scope", "Tenant_Application/WriteRequests")
	case serverError && unavailable:
		// Graph advises a delay on 503 as on 429.
		return newAPIError(http.StatusServiceUnavailable, CodeServiceUnavailable, "The service is temporarily unavailable.").
			withHeader("Retry-After", strconv.Itoa(int(faults.RetryAfter/time.Second)))
	case serverError:
		return lostAnswer()
	}
	return nil
}

// startWindow starts a Retry-After window when err is a 429 or 503 that asks for a wait; a
// longer window already running stands.
func (f *faultInjector) startWindow(err error, now time.Time) {
	apiErr, ok := err.(*apiError)
	if !ok || (apiErr.status != http.StatusTooManyRequests && apiErr.status != http.StatusServiceUnavailable) {
		return
	}
	seconds, _ := strconv.Atoi(apiErr.headers.Get("Retry-After"))
	if seconds <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if until := now.Add(time.Duration(seconds) * time.Second); until.After(f.throttledUntil) {
		f.throttledUntil = until
	}
}

// callsInRetryAfterWindow returns how many calls arrived inside a Retry-After window.
func (f *faultInjector) callsInRetryAfterWindow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.callsInWindow
}

// chargeQuota counts a write against the quota window; it reports whether the write is over
// the quota and how long until the window ends. Callers hold f.mu.
func (f *faultInjector) chargeQuota(method string) (bool, time.Duration) {
	if f.faults.WriteQuota <= 0 || method == http.MethodGet {
		return false, 0
	}
	now := time.Now()
	if now.Sub(f.windowStart) >= f.faults.QuotaWindow {
		f.windowStart, f.windowWrites = now, 0
	}
	if f.windowWrites >= f.faults.WriteQuota {
		return true, f.faults.QuotaWindow - now.Sub(f.windowStart)
	}
	f.windowWrites++
	return false, 0
}

// loseAnswer decides whether the answer of a write that is about to be applied gets lost.
func (f *faultInjector) loseAnswer(r *http.Request) bool {
	if r.Method == http.MethodGet {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.roll(f.faults.LostAnswerRate)
}

func lostAnswer() *apiError {
	return newAPIError(http.StatusInternalServerError, CodeGeneralException, "An internal server error occurred.")
}

// noteCreated records a new object's creation time while replication lag is simulated.
func (f *faultInjector) noteCreated(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults.ReplicationLag > 0 {
		f.created[id] = time.Now()
	}
}

// lagging reports whether object is still hidden by replication lag.
func (f *faultInjector) lagging(object *directoryObject) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	created, ok := f.created[object.id()]
	if !ok {
		return false
	}
	if time.Since(created) >= f.faults.ReplicationLag {
		delete(f.created, object.id())
		return false
	}
	return true
}
