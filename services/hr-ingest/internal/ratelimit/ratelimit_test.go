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
