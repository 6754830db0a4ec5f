// Command orgsync-bench measures orgsync end to end on this machine and writes a report: the
// latency from hr-ingest's 202 to the Graph write in the emulator, at steady offered loads, and
// the highest rate sustained before latency grows without bound. The pipeline runs as separate
// processes (a JetStream server on file storage, hr-ingest, org-model, one entra-writer with its
// write budget off); the Graph emulator, at zero latency and without faults, runs in this
// process so that it can time every write.
//
// Each offered change is a job-title update of an existing worker, sent as a signed canonical
// webhook; its Graph write is the PATCH that sets that title. With -go-bench it also runs the
// other benchmarks of `make bench` (hr-ingest's ingest rate next to raw JetStream, the initial
// load at Graph's quota, org-model's full recompute at 100,000 workers) and puts their output
// in the same report.
//
//	go run ./deploy/scale/cmd/orgsync-bench -rates 100,200,400,800 -out /tmp/bench.md
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orgsync/orgsync/deploy/scale/internal/harness"
	"github.com/orgsync/orgsync/deploy/scale/synth"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

type config struct {
	workers, units int
	seed           uint64
	rates          []int
	step           time.Duration
	drain          time.Duration
	binDir         string
	out            string
	goBench        bool
}

func main() {
	harness.MaybeServeNATS()
	var cfg config
	var rates string
	flag.IntVar(&cfg.workers, "workers", 2000, "workers in the organisation loaded first")
	flag.IntVar(&cfg.units, "units", 120, "org units in the organisation loaded first")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the organisation")
	flag.StringVar(&rates, "rates", "50,100,200,400,800", "offered loads in changes per second, one step each, in order")
	flag.DurationVar(&cfg.step, "step", 20*time.Second, "how long each offered load lasts")
	flag.DurationVar(&cfg.drain, "drain", 30*time.Second, "how long to wait after a step for its last writes")
	flag.StringVar(&cfg.binDir, "bin", "", "directory with prebuilt hr-ingest, org-model and entra-writer (default: build them)")
	flag.StringVar(&cfg.out, "out", "", "also write the report (Markdown) to this file")
	flag.BoolVar(&cfg.goBench, "go-bench", false, "also run the go test benchmarks of make bench and include their output")
	flag.Parse()
	for _, r := range strings.Split(rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "orgsync-bench: -rates: %q is not a positive number\n", r)
			os.Exit(2)
		}
		cfg.rates = append(cfg.rates, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "orgsync-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Hour)
	defer cancel()
	work, err := os.MkdirTemp("", "orgsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root, err := harness.RepoRoot(".")
	if err != nil {
		return err
	}
	binaries := map[string]string{}
	services := []string{"hr-ingest", "org-model", "entra-writer"}
	if cfg.binDir != "" {
		for _, s := range services {
			binaries[s] = filepath.Join(cfg.binDir, s)
		}
	} else if binaries, err = harness.Build(ctx, root, filepath.Join(work, "bin"), services...); err != nil {
		return err
	}

	var report strings.Builder
	fmt.Fprintf(&report, "# orgsync-bench report, %s\n\n%s\n", time.Now().UTC().Format(time.RFC3339), machine())
	rows, err := endToEnd(ctx, cfg, work, binaries)
	if err != nil {
		return err
	}
	writeEndToEnd(&report, cfg, rows)
	if cfg.goBench {
		goBenchmarks(ctx, root, &report)
	}
	fmt.Print(report.String())
	if cfg.out != "" {
		return os.WriteFile(cfg.out, []byte(report.String()), 0o644)
	}
	return nil
}

// writeLog times the Graph writes that carry a benchmark marker in jobTitle. It is safe for
// concurrent use.
type writeLog struct {
	mu      sync.Mutex
	written map[int]time.Time
}

const marker = "Bench change "

func (l *writeLog) record(seq int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.written[seq]; !seen {
		l.written[seq] = at
	}
}

func (l *writeLog) get(seq int) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.written[seq]
	return at, ok
}

// timed wraps the emulator: after a successful PATCH or POST of a user whose body sets a marked
// jobTitle, it records the write's time.
func (l *writeLog) timed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodPatch && r.Method != http.MethodPost) || !strings.Contains(r.URL.Path, "/users") {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(recorder, r)
		if recorder.status/100 != 2 {
			return
		}
		body := raw
		if r.Header.Get("Content-Encoding") == "gzip" {
			if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
				body, _ = io.ReadAll(zr)
			}
		}
		var props struct {
			JobTitle string `json:"jobTitle"`
		}
		if json.Unmarshal(body, &props) == nil && strings.HasPrefix(props.JobTitle, marker) {
			if seq, err := strconv.Atoi(strings.TrimPrefix(props.JobTitle, marker)); err == nil {
				l.record(seq, time.Now())
			}
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// row is one offered load's figures.
type row struct {
	rate                      int
	sent                      int
	sentPerSecond             float64
	written, superseded, lost int
	p50, p95, p99, max        time.Duration
	firstP50, lastP50         time.Duration
	sustained                 bool
}

func endToEnd(ctx context.Context, cfg config, work string, binaries map[string]string) ([]row, error) {
	emu := emulator.New()
	log := &writeLog{written: map[int]time.Time{}}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", log.timed(emu))
	mux.Handle("GET "+emulator.StatsPath, emu.StatsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var served sync.WaitGroup
	served.Go(func() { _ = srv.Serve(listener) })
	defer func() { _ = srv.Close(); served.Wait() }()

	pipeline, err := harness.StartPipeline(ctx, harness.PipelineOptions{
		Dir: work, Binaries: binaries, GraphURL: "http://" + listener.Addr().String() + "/v1.0",
		WriterEnv: harness.Env("GRAPH_WRITES_PER_WINDOW", "0"),
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = pipeline.Close() }()
	sender := harness.NewSender(func() string { return pipeline.HRIngestURL })

	// The organisation first, then wait until the directory stops changing.
	org := synth.Generate(synth.Options{Workers: cfg.workers, Units: cfg.units, Seed: cfg.seed, Now: time.Now()})
	for chunk := range slices.Chunk(org.Events(), 500) {
		if _, err := sender.Send(ctx, chunk[0].ID+"-load", synth.Batch(chunk)); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "loading %d workers in %d units…\n", cfg.workers, cfg.units)
	if err := waitQuiet(ctx, emu, 3*time.Second, 10*time.Minute); err != nil {
		return nil, err
	}
	today := time.Now().UTC().Format(time.DateOnly)
	var eligible []synth.Worker
	for _, w := range org.Workers {
		if w.EmploymentStatus == "active" && w.EndDate == "" && w.StartDate <= today {
			eligible = append(eligible, *w)
		}
	}
	// lastSeq is, per worker, the newest change sent (a newer title supersedes an older one
	// that was not written yet: the writer applies desired state, not every step).
	lastSeqOf := map[string]int{}
	seq := 0
	var rows []row
	for _, rate := range cfg.rates {
		fmt.Fprintf(os.Stderr, "offering %d changes/s for %v…\n", rate, cfg.step)
		total := int(float64(rate) * cfg.step.Seconds())
		accepted := make([]time.Time, total)
		seqs := make([]int, total)
		workerOf := make([]string, total)
		in := make(chan struct{}, 512)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range total {
			due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Until(due)):
			}
			seq++
			w := eligible[seq%len(eligible)]
			w.JobTitle = fmt.Sprintf("%s%d", marker, seq)
			seqs[i], workerOf[i] = seq, w.WorkerID
			lastSeqOf[w.WorkerID] = seq
			event := synth.Event{ID: fmt.Sprintf("bench-%d-%d", start.UnixNano(), seq), Kind: synth.KindUpdate, At: time.Now(), Worker: &w}
			in <- struct{}{}
			wg.Go(func() {
				defer func() { <-in }()
				if _, err := sender.Send(ctx, event.ID, event.Payload()); err == nil {
					accepted[i] = time.Now()
				}
			})
		}
		wg.Wait()
		sendTime := time.Since(start)
		// Drain: wait until every change is written or superseded, or the drain time is up.
		deadline := time.Now().Add(cfg.drain)
		for time.Now().Before(deadline) {
			pending := 0
			for i := range total {
				if _, ok := log.get(seqs[i]); !ok && lastSeqOf[workerOf[i]] == seqs[i] {
					pending++
				}
			}
			if pending == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		r := row{rate: rate, sent: total, sentPerSecond: float64(total) / sendTime.Seconds()}
		var latencies []time.Duration
		var thirds [3][]time.Duration
		for i := range total {
			at, ok := log.get(seqs[i])
			switch {
			case accepted[i].IsZero():
				r.lost++
			case ok:
				r.written++
				latency := max(0, at.Sub(accepted[i]))
				latencies = append(latencies, latency)
				thirds[min(2, 3*i/total)] = append(thirds[min(2, 3*i/total)], latency)
			case lastSeqOf[workerOf[i]] != seqs[i]:
				r.superseded++
			default:
				r.lost++
			}
		}
		r.p50, r.p95, r.p99, r.max = percentile(latencies, 0.5), percentile(latencies, 0.95), percentile(latencies, 0.99), percentile(latencies, 1)
		r.firstP50, r.lastP50 = percentile(thirds[0], 0.5), percentile(thirds[2], 0.5)
		// Sustained: the sender kept the pace, nothing is left unwritten, and latency did not
		// climb across the step (a growing backlog shows as the last third's median far above
		// the first third's).
		r.sustained = r.lost == 0 && r.sentPerSecond >= 0.95*float64(rate) && r.lastP50 <= 2*r.firstP50+100*time.Millisecond
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "  %d/s: p50 %v p95 %v p99 %v, sustained %v\n", rate, r.p50, r.p95, r.p99, r.sustained)
		if !r.sustained {
			break
		}
		time.Sleep(2 * time.Second)
	}
	return rows, nil
}

// waitQuiet waits until the emulator has seen writes and then none for quiet.
func waitQuiet(ctx context.Context, emu *emulator.Server, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last, lastChange := -1, time.Now()
	for time.Now().Before(deadline) {
		writes := emu.Stats().WriteRequests
		if writes != last {
			last, lastChange = writes, time.Now()
		} else if writes > 0 && time.Since(lastChange) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the directory was still changing after %v", timeout)
}

func percentile(values []time.Duration, p float64) time.Duration {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

func writeEndToEnd(w io.Writer, cfg config, rows []row) {
	fmt.Fprintf(w, "## End to end: webhook 202 → Graph write\n\n")
	fmt.Fprintf(w, "Organisation of %d workers in %d units loaded first; then each offered load for %v (open loop, up to 512 requests in flight). "+
		"One change = one job-title update webhook; its write = the PATCH setting that title in the emulator (zero latency, no faults). "+
		"Latencies in ms. Superseded: a newer title for the same worker was written instead (the writer applies the newest desired state).\n\n",
		cfg.workers, cfg.units, cfg.step)
	fmt.Fprintln(w, "| offered /s | achieved /s | changes | written | superseded | not written | p50 | p95 | p99 | max | median first → last third | sustained |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	best := 0
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %.0f | %d | %d | %d | %d | %s | %s | %s | %s | %s → %s | %v |\n", r.rate, r.sentPerSecond, r.sent, r.written, r.superseded, r.lost,
			ms(r.p50), ms(r.p95), ms(r.p99), ms(r.max), ms(r.firstP50), ms(r.lastP50), r.sustained)
		if r.sustained {
			best = r.rate
		}
	}
	fmt.Fprintf(w, "\nHighest offered load sustained: **%d changes/s**", best)
	if len(rows) > 0 && !rows[len(rows)-1].sustained {
		fmt.Fprintf(w, " (at %d/s latency grew or changes were left unwritten)", rows[len(rows)-1].rate)
	} else {
		fmt.Fprint(w, " (the highest offered; try higher -rates)")
	}
	fmt.Fprint(w, ".\n\n")
}

func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	memory := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			memory = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	load := ""
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(data))[:3], " ")
	}
	return fmt.Sprintf("Machine: %d cores (%s)%s, %s %s/%s%s.\n", runtime.NumCPU(), cpu, memory, runtime.Version(), runtime.GOOS, runtime.GOARCH, load)
}

// goBenchmarks runs the other benchmarks of make bench and appends their output.
func goBenchmarks(ctx context.Context, root string, w io.Writer) {
	commands := []struct{ title, command string }{
		{"hr-ingest: accepted events/s next to raw JetStream (same run, file storage)", "go test -run ^$ -bench . -benchmem -benchtime 3s ./services/hr-ingest/internal/ingest"},
		{"entra-writer: initial load of 10,000 workers / 600 units (writes vs minimum, time at 20 writes/s)", "go test -run ^$ -bench InitialLoad -benchtime 1x -timeout 60m ./services/entra-writer/service/"},
		{"org-model: full recompute of 100,000 workers / 5,000 units (time, heap)", "go test -run ^$ -bench FullRecompute -benchtime 1x -timeout 60m ./services/org-model/internal/model -args -org-model.large"},
		{"AD: initial load of 2,000 workers in 100 units into a real Samba AD DC (LDAP operations, wall time)", "go test -run ^$ -bench InitialLoad -benchtime 1x -timeout 60m ./services/ad-writer/service/"},
	}
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "running %s…\n", c.command)
		fields := strings.Fields(c.command)
		// Peak memory comes from GNU time where it is installed (Debian package "time").
		timed := false
		if _, err := os.Stat("/usr/bin/time"); err == nil && strings.Contains(c.command, "org-model") {
			fields, timed = append([]string{"/usr/bin/time", "-v"}, fields...), true
		}
		cmd := exec.CommandContext(ctx, fields[0], fields[1:]...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(w, "## %s\n\n    %s\n\n", c.title, c.command)
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.HasPrefix(line, "Benchmark") || strings.Contains(line, "FAIL") || err != nil {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
		if err != nil {
			fmt.Fprintf(w, "\n(failed: %v)\n", err)
		}
		if timed {
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "Maximum resident set size") {
					fmt.Fprintf(w, "\nPeak memory of the benchmark process (GNU time): %s\n", strings.TrimSpace(line))
				}
			}
		}
		if strings.Contains(c.command, "hr-ingest") {
			ingestRatios(w, string(out))
		}
		fmt.Fprintln(w)
	}
}

// ingestRatios prints each hr-ingest row's events/s as a share of the raw JetStream rates
// measured in the same run.
func ingestRatios(w io.Writer, out string) {
	rates := map[string]float64{}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		for i := 1; i < len(fields); i++ {
			if fields[i] == "events/s" && strings.HasPrefix(fields[0], "BenchmarkPublish/") {
				rate, err := strconv.ParseFloat(fields[i-1], 64)
				if err == nil {
					name := strings.TrimPrefix(fields[0], "BenchmarkPublish/")
					name = name[:strings.LastIndex(name, "-")]
					rates[name] = rate
					names = append(names, name)
				}
			}
		}
	}
	sequential, parallel := rates["raw-jetstream/sequential"], rates["raw-jetstream/parallel"]
	if sequential == 0 || parallel == 0 {
		return
	}
	fmt.Fprintln(w, "\n| benchmark | events/s | ÷ raw sequential | ÷ raw parallel |\n|---|---:|---:|---:|")
	for _, name := range names {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f |\n", name, rates[name], rates[name]/sequential, rates[name]/parallel)
	}
}
