package ratelimit

import (
	"log/slog"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/redistest"
)

func TestSharedAcrossReplicas(t *testing.T) {
	url := redistest.Start(t)
	limit := Limit{Requests: 2, Period: time.Minute, Burst: 2}
	var replicas []*Limiter
	for range 2 {
		rdb, err := Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		replicas = append(replicas, New(rdb, slog.New(slog.DiscardHandler)))
	}
	tests := []struct {
		name      string
		replica   int
		source    string
		wantAllow bool
	}{
		{name: "first request, replica 0", replica: 0, source: "workday", wantAllow: true},
		{name: "second request, replica 1", replica: 1, source: "workday", wantAllow: true},
		{name: "third request on either replica is over the shared budget", replica: 0, source: "workday", wantAllow: false},
		{name: "another source has its own budget", replica: 1, source: "bamboo", wantAllow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, wait := replicas[tt.replica].Allow(t.Context(), tt.source, limit)
			if allowed != tt.wantAllow {
				t.Fatalf("allowed = %v, want %v", allowed, tt.wantAllow)
			}
			if !allowed && wait <= 0 {
				t.Errorf("refused without a wait (%v)", wait)
			}
		})
	}
}

func TestLocalFallback(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{name: "no Redis configured"},
		{name: "Redis unreachable", url: "unix://" + t.TempDir() + "/no.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := Connect(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if rdb != nil {
				t.Cleanup(func() { rdb.Close() })
			}
			l := New(rdb, slog.New(slog.DiscardHandler))
			limit := Limit{Requests: 1, Period: time.Hour}
			if ok, _ := l.Allow(t.Context(), "s", limit); !ok {
				t.Fatal("first request refused")
			}
			ok, wait := l.Allow(t.Context(), "s", limit)
			if ok || wait <= 0 {
				t.Errorf("second request: allowed %v, wait %v; want refused with a wait", ok, wait)
			}
			if ok, _ := l.Allow(t.Context(), "s", Limit{}); !ok {
				t.Error("a zero limit must not limit")
			}
		})
	}
}

func TestConnectHidesURL(t *testing.T) {
	_, err := Connect("nonsense://user:hunter2@host")
	if err == nil || err.Error() != "REDIS_URL is not a redis://, rediss:// or unix:// URL" {
		t.Errorf("err = %v", err)
	}
}

// TestClientFailuresApart checks, with Redis and without, that failed authentications spend the
// client address's own budget, never a source's, and that looking spends nothing.
func TestClientFailuresApart(t *testing.T) {
	url := redistest.Start(t)
	tests := []struct {
		name string
		url  string
	}{
		{name: "shared in Redis", url: url},
		{name: "in this replica"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := Connect(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if rdb != nil {
				t.Cleanup(func() { rdb.Close() })
			}
			l := New(rdb, slog.New(slog.DiscardHandler))
			failures := Limit{Requests: 2, Period: time.Hour}
			source := Limit{Requests: 1, Period: time.Hour}
			client := "192.0.2.1 " + tt.name // apart from the other subtest's keys in the shared Redis
			for i := range 3 {
				if blocked, _ := l.ClientBlocked(t.Context(), client, failures); blocked {
					t.Fatalf("look %d: blocked before the budget was spent", i)
				}
			}
			for i := range 2 {
				if ok, _ := l.ClientFailed(t.Context(), client, failures); !ok {
					t.Fatalf("failure %d refused within the budget", i+1)
				}
			}
			if blocked, wait := l.ClientBlocked(t.Context(), client, failures); !blocked || wait <= 0 {
				t.Errorf("after the budget: blocked %v, wait %v; want blocked with a wait", blocked, wait)
			}
			if ok, wait := l.ClientFailed(t.Context(), client, failures); ok || wait <= 0 {
				t.Errorf("third failure: allowed %v, wait %v; want refused with a wait", ok, wait)
			}
			if blocked, _ := l.ClientBlocked(t.Context(), "192.0.2.2 "+tt.name, failures); blocked {
				t.Error("another address is blocked too")
			}
			if ok, _ := l.Allow(t.Context(), client, source); !ok {
				t.Error("a source named like the client lost its budget to the client's failures")
			}
		})
	}
}
