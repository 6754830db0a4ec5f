package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgsync/orgsync/pkg/redistest"
)

func connect(t *testing.T, url string) *redis.Client {
	t.Helper()
	client, err := Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// modes builds a limiter each way the package works: shared in a real redis-server, kept in the
// process, and shared in a Redis that cannot be reached (the fallback). Every behaviour below
// holds in every mode.
func modes(t *testing.T) map[string]func(t *testing.T) *Limiter {
	return map[string]func(t *testing.T) *Limiter{
		"redis": func(t *testing.T) *Limiter { return New(connect(t, redistest.Start(t)), "test:", nil) },
		"local": func(*testing.T) *Limiter { return New(nil, "test:", nil) },
		"redis unreachable": func(t *testing.T) *Limiter {
			return New(connect(t, "unix://"+filepath.Join(t.TempDir(), "nobody-listens.sock")), "test:", nil)
		},
	}
}

// takeAll takes single events from key until refused, up to tries times, and returns how many
// it got.
func takeAll(l *Limiter, key string, limit Limit, tries int) int {
	taken := 0
	for range tries {
		if ok, _ := l.Take(context.Background(), key, limit, 1); ok {
			taken++
		}
	}
	return taken
}

func TestLimiter(t *testing.T) {
	// A period so long that nothing comes back during a test: only the burst is there.
	slow := Limit{Events: 10, Period: 10 * time.Hour, Burst: 3}
	for mode, newLimiter := range modes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Run("a burst, then a wait", func(t *testing.T) {
				l := newLimiter(t)
				if got := takeAll(l, "a", slow, 10); got != 3 {
					t.Errorf("took %d, want the burst of 3", got)
				}
				ok, wait := l.Take(t.Context(), "a", slow, 1)
				if ok || wait < 30*time.Minute || wait > time.Hour {
					t.Errorf("Take = %v, %v; want refused with a wait of about an hour", ok, wait)
				}
			})
			t.Run("keys and limits are apart", func(t *testing.T) {
				l := newLimiter(t)
				takeAll(l, "a", slow, 10)
				if got := takeAll(l, "b", slow, 10); got != 3 {
					t.Errorf("key b took %d after a was spent, want 3", got)
				}
			})
			t.Run("all or nothing", func(t *testing.T) {
				l := newLimiter(t)
				if ok, _ := l.Take(t.Context(), "a", slow, 2); !ok {
					t.Fatal("2 of a burst of 3 refused")
				}
				if ok, _ := l.Take(t.Context(), "a", slow, 2); ok {
					t.Error("2 more taken with 1 left")
				}
				if got := takeAll(l, "a", slow, 5); got != 1 {
					t.Errorf("took %d after the refusal, want the 1 left", got)
				}
			})
			t.Run("a look spends nothing", func(t *testing.T) {
				l := newLimiter(t)
				for range 10 {
					if ok, _ := l.Take(t.Context(), "a", slow, 0); !ok {
						t.Fatal("a look refused with the budget whole")
					}
				}
				if got := takeAll(l, "a", slow, 10); got != 3 {
					t.Errorf("took %d after looking, want the burst of 3", got)
				}
				if ok, wait := l.Take(t.Context(), "a", slow, 0); ok || wait <= 0 {
					t.Errorf("look at a spent budget = %v, %v; want refused with a wait", ok, wait)
				}
			})
			t.Run("no limit", func(t *testing.T) {
				l := newLimiter(t)
				if got := takeAll(l, "a", Limit{}, 100); got != 100 {
					t.Errorf("took %d of 100 without a limit", got)
				}
			})
			t.Run("wait blocks until the budget comes back", func(t *testing.T) {
				l := newLimiter(t)
				fast := Limit{Events: 100, Period: time.Second, Burst: 5}
				// 12 at once: more than a burst, taken a burst at a time.
				if err := l.Wait(t.Context(), "w", fast, 12); err != nil {
					t.Fatal(err)
				}
				if ok, _ := l.Take(t.Context(), "w", fast, 5); ok {
					t.Error("a whole burst left after waiting for more than one")
				}
			})
			t.Run("wait gives up when its context ends", func(t *testing.T) {
				l := newLimiter(t)
				takeAll(l, "a", slow, 10)
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				defer cancel()
				if err := l.Wait(ctx, "a", slow, 1); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Wait = %v, want the context's deadline", err)
				}
			})
		})
	}
}

// TestSharedAcrossReplicas: replicas with their own connections to one Redis share one budget;
// limiters kept in each process each have their own.
func TestSharedAcrossReplicas(t *testing.T) {
	url := redistest.Start(t)
	limit := Limit{Events: 3000, Period: 150 * time.Hour, Burst: 50}
	tests := []struct {
		name   string
		client func() *redis.Client
		want   int
	}{
		{name: "shared in Redis", client: func() *redis.Client { return connect(t, url) }, want: 50},
		{name: "one per process", client: func() *redis.Client { return nil }, want: 3 * 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			taken := 0
			for range 3 {
				taken += takeAll(New(tt.client(), "replicas:"+tt.name+":", nil), "graph-writes", limit, 40)
			}
			if taken != tt.want {
				t.Errorf("three replicas took %d, want %d", taken, tt.want)
			}
		})
	}
}

// TestFallsBackWhenRedisGoesAway: a limiter sharing its budget in Redis goes on limiting, in its
// own process, once Redis is gone, and the budget it keeps there is a real one.
func TestFallsBackWhenRedisGoesAway(t *testing.T) {
	var l *Limiter
	limit := Limit{Events: 1, Period: time.Hour, Burst: 2}
	t.Run("while Redis is up", func(t *testing.T) {
		// The redis-server of this subtest stops when it ends.
		l = New(connect(t, redistest.Start(t)), "fallback:", nil)
		if got := takeAll(l, "k", limit, 5); got != 2 {
			t.Fatalf("took %d, want the burst of 2", got)
		}
	})
	if got := takeAll(l, "k", limit, 5); got != 2 {
		t.Errorf("took %d with Redis gone, want a local burst of 2", got)
	}
	if err := l.Wait(t.Context(), "other", limit, 2); err != nil {
		t.Errorf("Wait with Redis gone: %v", err)
	}
}

func TestLocalKeysBounded(t *testing.T) {
	l := New(nil, "", nil)
	limit := Limit{Events: 1, Period: time.Hour, Burst: 1}
	for i := range MaxLocalKeys + 10 {
		l.Take(t.Context(), fmt.Sprintf("client:%d", i), limit, 1)
	}
	if n := len(l.local); n > MaxLocalKeys {
		t.Errorf("%d local budgets kept, want at most %d", n, MaxLocalKeys)
	}
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name, url string
		wantNil   bool
		wantErr   error
	}{
		{name: "no URL: each process limits on its own", url: "", wantNil: true},
		{name: "a socket", url: "unix:///run/redis.sock"},
		{name: "not a URL, password kept out of the error", url: "redis//:hunter2@host", wantNil: true, wantErr: ErrBadURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := Connect(tt.url)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if (client == nil) != tt.wantNil {
				t.Errorf("client = %v, want nil: %v", client, tt.wantNil)
			}
			if client != nil {
				_ = client.Close()
			}
		})
	}
}
