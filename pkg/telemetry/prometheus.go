package telemetry

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// prometheusReader is the pull reader Setup installs, which MetricsHandler collects from.
var prometheusReader atomic.Pointer[sdkmetric.ManualReader]

// MetricsHandler serves the service's OpenTelemetry metrics in the Prometheus text exposition
// format (version 0.0.4), for scraping at /metrics: dots become underscores, counters end in
// _total, seconds in _seconds, ratios in _ratio. Before Setup (or with OTEL_SDK_DISABLED) it
// serves an empty page. It is safe for concurrent use.
func MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		reader := prometheusReader.Load()
		if reader == nil {
			return
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(r.Context(), &rm); err != nil {
			http.Error(w, "collecting metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		WritePrometheus(w, &rm)
	})
}

// WritePrometheus writes rm in the Prometheus text exposition format. Metrics of one name from
// several instrumentation scopes are written as one family.
func WritePrometheus(w io.Writer, rm *metricdata.ResourceMetrics) {
	f := &families{byName: map[string]*family{}}
	for _, scope := range rm.ScopeMetrics {
		for _, m := range scope.Metrics {
			writeMetric(f, m)
		}
	}
	for _, name := range f.order {
		fam := f.byName[name]
		if fam.help != "" {
			fmt.Fprintf(w, "# HELP %s %s\n", name, strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(fam.help))
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", name, fam.kind)
		_, _ = fam.lines.WriteTo(w)
	}
}

// families collects metric families in first-seen order.
type families struct {
	order  []string
	byName map[string]*family
}

type family struct {
	help, kind string
	lines      bytes.Buffer
}

// header returns the buffer of the family name, creating it with help and kind.
func header(f *families, name, help, kind string) io.Writer {
	fam, ok := f.byName[name]
	if !ok {
		fam = &family{help: help, kind: kind}
		f.byName[name] = fam
		f.order = append(f.order, name)
	}
	return &fam.lines
}

func writeMetric(w *families, m metricdata.Metrics) {
	name := promName(m.Name, m.Unit)
	switch data := m.Data.(type) {
	case metricdata.Sum[int64]:
		writeSum(w, name, m.Description, data.IsMonotonic, data.DataPoints)
	case metricdata.Sum[float64]:
		writeSum(w, name, m.Description, data.IsMonotonic, data.DataPoints)
	case metricdata.Gauge[int64]:
		writePoints(w, name, m.Description, "gauge", data.DataPoints)
	case metricdata.Gauge[float64]:
		writePoints(w, name, m.Description, "gauge", data.DataPoints)
	case metricdata.Histogram[int64]:
		writeHistogram(w, name, m.Description, data.DataPoints)
	case metricdata.Histogram[float64]:
		writeHistogram(w, name, m.Description, data.DataPoints)
	}
}

func writeSum[N int64 | float64](w *families, name, help string, monotonic bool, points []metricdata.DataPoint[N]) {
	if monotonic {
		writePoints(w, name+"_total", help, "counter", points)
		return
	}
	writePoints(w, name, help, "gauge", points)
}

func writePoints[N int64 | float64](f *families, name, help, kind string, points []metricdata.DataPoint[N]) {
	if len(points) == 0 {
		return
	}
	w := header(f, name, help, kind)
	for _, p := range points {
		fmt.Fprintf(w, "%s%s %s\n", name, labels(p.Attributes, ""), number(float64(p.Value)))
	}
}

func writeHistogram[N int64 | float64](f *families, name, help string, points []metricdata.HistogramDataPoint[N]) {
	if len(points) == 0 {
		return
	}
	w := header(f, name, help, "histogram")
	for _, p := range points {
		var cumulative uint64
		for i, bound := range p.Bounds {
			cumulative += p.BucketCounts[i]
			fmt.Fprintf(w, "%s_bucket%s %d\n", name, labels(p.Attributes, number(bound)), cumulative)
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", name, labels(p.Attributes, "+Inf"), p.Count)
		fmt.Fprintf(w, "%s_sum%s %s\n", name, labels(p.Attributes, ""), number(float64(p.Sum)))
		fmt.Fprintf(w, "%s_count%s %d\n", name, labels(p.Attributes, ""), p.Count)
	}
}

// promName turns an OpenTelemetry instrument name and unit into a Prometheus metric name.
func promName(name, unit string) string {
	out := sanitize(name, true)
	switch unit {
	case "s":
		out += "_seconds"
	case "ms":
		out += "_milliseconds"
	case "By":
		out += "_bytes"
	case "1":
		out += "_ratio"
	}
	return out
}

func sanitize(name string, colons bool) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r >= '0' && r <= '9' && i > 0, colons && r == ':':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// labels renders attributes (and le, for a histogram bucket) as a Prometheus label set.
func labels(set attribute.Set, le string) string {
	var pairs []string
	for _, kv := range set.ToSlice() {
		pairs = append(pairs, sanitize(string(kv.Key), false)+`="`+escape(kv.Value.Emit())+`"`)
	}
	sort.Strings(pairs)
	if le != "" {
		pairs = append(pairs, `le="`+le+`"`)
	}
	if len(pairs) == 0 {
		return ""
	}
	return "{" + strings.Join(pairs, ",") + "}"
}

func escape(value string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(value)
}

func number(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
