// Package ratelimit is orgsync's one rate limiter. With Redis it is a GCRA (generic cell rate
// algorithm, github.com/go-redis/redis_rate) shared by every replica of a service; without Redis,
// or while Redis cannot be reached, each process keeps the same budget on its own, so that the
// work limited never stops because the limiter's store is down. hr-ingest limits its sources'
// requests and failed authentications with it; entra-writer keeps Microsoft Graph's write budget
// with it.
//
// It is meant for orgsync's own services, not for outside use.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limit allows Events per Period with bursts of Burst (default Events). Zero Events is no limit.
type Limit struct {
	Events int
	Period time.Duration
	Burst  int
}

// withDefaults fills in a period of a second and a burst of Events.
func (l Limit) withDefaults() Limit {
	if l.Period <= 0 {
		l.Period = time.Second
	}
	if l.Burst <= 0 {
		l.Burst = l.Events
	}
	return l
}

// interval is the time one event's budget takes to come back.
func (l Limit) interval() time.Duration { return l.Period / time.Duration(l.Events) }

// MaxLocalKeys bounds the budgets a process keeps without Redis: past it, budgets back at their
// full burst (indistinguishable from new ones) are forgotten, and if none is, all are, rather
// than letting keys spread by a flood (one per client address) grow memory.
const MaxLocalKeys = 10000

// Limiter hands out budgets by key. It is safe for concurrent use.
type Limiter struct {
	shared *redis_rate.Limiter
	prefix string
	logger *slog.Logger

	mu    sync.Mutex
	local map[string]*rate.Limiter
	// redisDownUntil is when Redis is asked again after it failed: meanwhile every budget is
	// kept in the process without waiting for a connection that will not come.
	redisDownUntil time.Time
}

// RedisRetry is how long a Limiter keeps its budgets in the process after Redis failed, before
// it asks Redis again.
const RedisRetry = 5 * time.Second

// New returns a Limiter whose keys are prefix + key in rdb, or one kept in this process when rdb
// is nil. prefix names the service and use, e.g. "orgsync:hr-ingest:".
func New(rdb *redis.Client, prefix string, logger *slog.Logger) *Limiter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{prefix: prefix, logger: logger, local: map[string]*rate.Limiter{}}
	if rdb != nil {
		l.shared = redis_rate.NewLimiter(rdb)
	}
	return l
}

// Take spends n events of key's budget under limit, all or nothing; n = 0 only looks, spending
// nothing, and is allowed while one whole event remains. When it is not allowed it returns how
// long to wait. n larger than the burst is never allowed (see Wait).
func (l *Limiter) Take(ctx context.Context, key string, limit Limit, n int) (bool, time.Duration) {
	if limit.Events <= 0 {
		return true, 0
	}
	limit = limit.withDefaults()
	if l.shared != nil && l.redisUp() {
		res, err := l.shared.AllowN(ctx, l.prefix+key, redis_rate.Limit{Rate: limit.Events, Burst: limit.Burst, Period: limit.Period}, n)
		if err == nil {
			if n == 0 {
				if res.Remaining >= 1 {
					return true, 0
				}
				return false, limit.interval()
			}
			if res.Allowed >= n {
				return true, 0
			}
			return false, max(res.RetryAfter, 0)
		}
		if ctx.Err() == nil {
			l.redisFailed(ctx, err)
		}
	}
	return l.takeLocal(key, limit, n)
}

// redisUp says whether Redis is to be asked: it has not failed within RedisRetry.
func (l *Limiter) redisUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !time.Now().Before(l.redisDownUntil)
}

// redisFailed keeps budgets in the process for RedisRetry, saying so once.
func (l *Limiter) redisFailed(ctx context.Context, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.redisDownUntil) {
		return
	}
	l.redisDownUntil = time.Now().Add(RedisRetry)
	// The key may name a client address: only the error is logged.
	l.logger.WarnContext(ctx, "shared rate limit unavailable; limiting in this process", "retry_in", RedisRetry, "error", err)
}

func (l *Limiter) takeLocal(key string, limit Limit, n int) (bool, time.Duration) {
	key = fmt.Sprintf("%s/%d/%v/%d", key, limit.Events, limit.Period, limit.Burst)
	l.mu.Lock()
	bucket, ok := l.local[key]
	if !ok {
		if len(l.local) >= MaxLocalKeys {
			l.forgetIdle()
		}
		bucket = rate.NewLimiter(rate.Every(limit.interval()), limit.Burst)
		l.local[key] = bucket
	}
	l.mu.Unlock()
	now := time.Now()
	if n == 0 {
		if bucket.TokensAt(now) >= 1 {
			return true, 0
		}
		return false, limit.interval()
	}
	reservation := bucket.ReserveN(now, n)
	if !reservation.OK() {
		return false, limit.interval()
	}
	if delay := reservation.DelayFrom(now); delay > 0 {
		reservation.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// forgetIdle drops the budgets back at their full burst, or every budget when none is. l.mu is held.
func (l *Limiter) forgetIdle() {
	now := time.Now()
	for key, bucket := range l.local {
		if bucket.TokensAt(now) >= float64(bucket.Burst()) {
			delete(l.local, key)
		}
	}
	if len(l.local) >= MaxLocalKeys {
		clear(l.local)
	}
}

// Wait spends n events of key's budget, waiting until they are available or ctx ends (its error
// is then returned). More than a burst at once is taken a burst at a time.
func (l *Limiter) Wait(ctx context.Context, key string, limit Limit, n int) error {
	if limit.Events <= 0 {
		return nil
	}
	limit = limit.withDefaults()
	for n > 0 {
		chunk := min(n, limit.Burst)
		ok, wait := l.Take(ctx, key, limit, chunk)
		if ok {
			n -= chunk
			continue
		}
		timer := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	return nil
}

// ErrBadURL says REDIS_URL is not a Redis URL; it never repeats the URL, which may hold a password.
var ErrBadURL = errors.New("REDIS_URL is not a redis://, rediss:// or unix:// URL")

// Connect opens a Redis client for url (redis://, rediss:// or unix://); an empty url gives nil,
// a limiter kept in each process.
func Connect(url string) (*redis.Client, error) {
	if url == "" {
		return nil, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, ErrBadURL
	}
	return redis.NewClient(opts), nil
}
