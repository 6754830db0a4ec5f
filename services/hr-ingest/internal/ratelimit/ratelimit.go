// Package ratelimit limits requests per HR source. With Redis (REDIS_URL) the limit is a GCRA
// shared by every hr-ingest replica (github.com/go-redis/redis_rate); without it, or while Redis
// cannot be reached, each replica keeps its own token bucket so that ingestion never stops
// because the limiter's store is down.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limit allows Requests per Period with bursts of Burst. A zero Requests means no limit.
type Limit struct {
	Requests int
	Period   time.Duration
	Burst    int
}

// Limiter decides whether a source may make one more request, and whether a client address that
// failed to authenticate may try again. The two are kept apart (keys "source:<name>" and
// "client:<address>"), so that requests nobody signed never spend a source's budget. It is safe
// for concurrent use.
type Limiter struct {
	shared *redis_rate.Limiter
	logger *slog.Logger

	mu      sync.Mutex
	local   map[string]*rate.Limiter
	clients map[string]*rate.Limiter
}

// maxLocalClients bounds the per-address buckets a replica keeps without Redis: past it they
// are forgotten (every address starts afresh) rather than letting a spread-out flood grow memory.
const maxLocalClients = 10000

// New returns a Limiter over rdb, or an in-process one when rdb is nil.
func New(rdb *redis.Client, logger *slog.Logger) *Limiter {
	l := &Limiter{logger: logger, local: map[string]*rate.Limiter{}, clients: map[string]*rate.Limiter{}}
	if rdb != nil {
		l.shared = redis_rate.NewLimiter(rdb)
	}
	return l
}

// Allow takes one request from source's budget. When the budget is spent it returns false and
// how long to wait.
func (l *Limiter) Allow(ctx context.Context, source string, limit Limit) (bool, time.Duration) {
	return l.take(ctx, "source:"+source, limit, 1)
}

// ClientFailed records one failed authentication from client (a remote address) against its
// budget of failures. It returns false, and how long to wait, when the client has spent it.
func (l *Limiter) ClientFailed(ctx context.Context, client string, limit Limit) (bool, time.Duration) {
	return l.take(ctx, "client:"+client, limit, 1)
}

// ClientBlocked says, without spending anything, whether client has spent its budget of failed
// authentications, so that its next request can be refused before its body is read.
func (l *Limiter) ClientBlocked(ctx context.Context, client string, limit Limit) (bool, time.Duration) {
	allowed, wait := l.take(ctx, "client:"+client, limit, 0)
	return !allowed, wait
}

// take spends n requests (0 only looks) of the budget under key.
func (l *Limiter) take(ctx context.Context, key string, limit Limit, n int) (bool, time.Duration) {
	if limit.Requests <= 0 {
		return true, 0
	}
	if limit.Period <= 0 {
		limit.Period = time.Second
	}
	if limit.Burst <= 0 {
		limit.Burst = limit.Requests
	}
	if l.shared != nil {
		res, err := l.shared.AllowN(ctx, "orgsync:hr-ingest:"+key, redis_rate.Limit{Rate: limit.Requests, Burst: limit.Burst, Period: limit.Period}, n)
		if err == nil {
			if n == 0 {
				// A look spends nothing: one more is allowed while a whole request remains.
				if res.Remaining >= 1 {
					return true, 0
				}
				return false, limit.Period / time.Duration(limit.Requests)
			}
			return res.Allowed > 0, res.RetryAfter
		}
		l.logger.WarnContext(ctx, "shared rate limit unavailable; limiting in this replica", "key", strings.SplitN(key, ":", 2)[0], "error", err)
	}
	return l.takeLocal(key, limit, n)
}

func (l *Limiter) takeLocal(key string, limit Limit, n int) (bool, time.Duration) {
	l.mu.Lock()
	buckets := l.local
	if strings.HasPrefix(key, "client:") {
		buckets = l.clients
		if len(buckets) >= maxLocalClients {
			clear(buckets)
		}
	}
	key = fmt.Sprintf("%s/%d/%v/%d", key, limit.Requests, limit.Period, limit.Burst)
	bucket, ok := buckets[key]
	if !ok {
		bucket = rate.NewLimiter(rate.Every(limit.Period/time.Duration(limit.Requests)), limit.Burst)
		buckets[key] = bucket
	}
	l.mu.Unlock()
	if n == 0 {
		if bucket.Tokens() >= 1 {
			return true, 0
		}
		return false, limit.Period / time.Duration(limit.Requests)
	}
	reservation := bucket.ReserveN(time.Now(), n)
	if delay := reservation.Delay(); delay > 0 {
		reservation.Cancel()
		return false, delay
	}
	return true, 0
}

// Connect opens a Redis client for url (redis://, rediss:// or unix://); an empty url gives nil.
func Connect(url string) (*redis.Client, error) {
	if url == "" {
		return nil, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: the error says what is wrong without repeating it.
		return nil, errors.New("REDIS_URL is not a redis://, rediss:// or unix:// URL")
	}
	return redis.NewClient(opts), nil
}
