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

// Limiter decides whether a source may make one more request. It is safe for concurrent use.
type Limiter struct {
	shared *redis_rate.Limiter
	logger *slog.Logger

	mu    sync.Mutex
	local map[string]*rate.Limiter
}

// New returns a Limiter over rdb, or an in-process one when rdb is nil.
func New(rdb *redis.Client, logger *slog.Logger) *Limiter {
	l := &Limiter{logger: logger, local: map[string]*rate.Limiter{}}
	if rdb != nil {
		l.shared = redis_rate.NewLimiter(rdb)
	}
	return l
}

// Allow takes one request from source's budget. When the budget is spent it returns false and
// how long to wait.
func (l *Limiter) Allow(ctx context.Context, source string, limit Limit) (bool, time.Duration) {
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
		res, err := l.shared.Allow(ctx, "orgsync:hr-ingest:source:"+source, redis_rate.Limit{Rate: limit.Requests, Burst: limit.Burst, Period: limit.Period})
		if err == nil {
			return res.Allowed > 0, res.RetryAfter
		}
		l.logger.WarnContext(ctx, "shared rate limit unavailable; limiting in this replica", "source", source, "error", err)
	}
	return l.allowLocal(source, limit)
}

func (l *Limiter) allowLocal(source string, limit Limit) (bool, time.Duration) {
	l.mu.Lock()
	key := fmt.Sprintf("%s/%d/%v/%d", source, limit.Requests, limit.Period, limit.Burst)
	bucket, ok := l.local[key]
	if !ok {
		bucket = rate.NewLimiter(rate.Every(limit.Period/time.Duration(limit.Requests)), limit.Burst)
		l.local[key] = bucket
	}
	l.mu.Unlock()
	reservation := bucket.Reserve()
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
