package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIngestRatios(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want string
	}{
		{
			name: "rows next to raw",
			out: `BenchmarkPublish/raw-jetstream/sequential-2   97268   41072 ns/op   20000 events/s   5199 B/op
BenchmarkPublish/raw-jetstream/parallel-2     155854  24859 ns/op   40000 events/s   5103 B/op
BenchmarkPublish/hr-ingest/canonical-1-event/sequential-2   19549   204672 ns/op   5000 events/s
ok  	github.com/orgsync/orgsync/services/hr-ingest/internal/ingest	60s`,
			want: `
| benchmark | events/s | ÷ raw sequential | ÷ raw parallel |
|---|---:|---:|---:|
| raw-jetstream/sequential | 20000 | 1.00 | 0.50 |
| raw-jetstream/parallel | 40000 | 2.00 | 1.00 |
| hr-ingest/canonical-1-event/sequential | 5000 | 0.25 | 0.12 |
`,
		},
		{name: "no raw rate, no table", out: "FAIL\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got strings.Builder
			ingestRatios(&got, tt.out)
			if diff := cmp.Diff(tt.want, got.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	values := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	tests := []struct {
		name string
		p    float64
		want time.Duration
	}{
		{name: "median", p: 0.5, want: 6},
		{name: "p95", p: 0.95, want: 10},
		{name: "max", p: 1, want: 10},
		{name: "min", p: 0, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(values, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}
