package budget

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Graph throttles per app and tenant: a 429 (or a 503) with Retry-After says the app, not the one
// request, must wait. A Pause holds that wait for every call of every replica: the Graph client
// asks it before each call and sets it after each throttled answer (see graph.ThrottleTransport).

// SharedPause is the throttling pause in Redis, shared by every replica using the same key.
type SharedPause struct {
	client *redis.Client
	key    string
}

// NewSharedPause returns a pause in Redis under key, e.g. "graph-writes:<tenant id>:paused".
func NewSharedPause(client *redis.Client, key string) *SharedPause {
	return &SharedPause{client: client, key: key}
}

// extendPause sets the pause key to expire in ARGV[1] milliseconds unless it already outlives that.
var extendPause = redis.NewScript(`
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
`)

// Remaining returns how long calls are still paused; zero when they may go.
func (p *SharedPause) Remaining(ctx context.Context) (time.Duration, error) {
	left, err := p.client.PTTL(ctx, p.key).Result()
	if err != nil {
		return 0, fmt.Errorf("throttling pause in Redis: %w", err)
	}
	// PTTL answers -2 for no key and -1 for a key without expiry, which this package never sets.
	return max(left, 0), nil
}

// Pause pauses every call for d from now; a longer pause already set stands.
func (p *SharedPause) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := extendPause.Run(ctx, p.client, []string{p.key}, d.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("throttling pause in Redis: %w", err)
	}
	return nil
}

// LocalPause is the throttling pause of this process alone, without Redis.
type LocalPause struct {
	mu    sync.Mutex
	until time.Time
	now   func() time.Time
}

// NewLocalPause returns an in-process pause.
func NewLocalPause() *LocalPause { return &LocalPause{now: time.Now} }

// Remaining returns how long calls are still paused; zero when they may go.
func (p *LocalPause) Remaining(context.Context) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.until.Sub(p.now()), 0), nil
}

// Pause pauses every call for d from now; a longer pause already set stands.
func (p *LocalPause) Pause(_ context.Context, d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := p.now().Add(d); until.After(p.until) {
		p.until = until
	}
	return nil
}
