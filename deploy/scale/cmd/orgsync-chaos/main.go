// Command orgsync-chaos runs the whole orgsync pipeline as separate processes on this machine —
// a JetStream server on file storage, hr-ingest, org-model, two entra-writer replicas sharing a
// Graph write budget in a real redis-server, and two ad-writer replicas — against a Graph
// emulator that fails about 20% of calls (429, 503, 500, answers lost after the write) and lags
// replication, and against a real Samba AD domain controller (scripts/samba-dc.sh, LDAPS on
// loopback). org-model's policy maps both targets; in AD every user lives in the OU of its
// second-level org unit. It sends a synthetic organisation and a stream of HR changes through
// hr-ingest's webhook endpoint while it kills services with SIGKILL at random moments (from a
// seed) and restarts them, restarts the JetStream server, and stops and restarts the Samba DC.
// Then it computes the desired state with org-model's domain (replay.Desired, plain function calls)
// over the same HR changes and compares the emulator and the DC with it exactly: users and their
// attributes, enabled state, OU and manager, groups and memberships; no lost change, no duplicate
// account, no stray member.
//
// It prints a summary and exits 1 on any difference (2 on a usage error).
//
//	go run ./deploy/scale/cmd/orgsync-chaos -changes 5000 -seed 1
//	go run ./deploy/scale/cmd/orgsync-chaos -changes 300 -ad=false    # Entra only, no Samba
//
// Samba listens on fixed ports, so the run takes the machine-wide lock ad-writer's tests use
// ($TMPDIR/orgsync-samba-dc.lock) and waits while someone else holds it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/deploy/scale/internal/harness"
	"github.com/orgsync/orgsync/deploy/scale/synth"
	"github.com/orgsync/orgsync/pkg/sambadc"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

type config struct {
	workers, units, changes int
	seed                    uint64
	maxActions              int
	meanInterval            time.Duration
	convergeTimeout         time.Duration
	timeout                 time.Duration
	binDir                  string
	keep                    bool
	faultRate               float64
	writeQuota              int
	replicationLag          time.Duration
	rate                    float64
	ad                      bool
	sambaDir                string
	adDriftInterval         time.Duration
}

func main() {
	harness.MaybeServeNATS()
	var cfg config
	flag.IntVar(&cfg.workers, "workers", 1000, "workers in the initial organisation")
	flag.IntVar(&cfg.units, "units", 60, "org units in the initial organisation")
	flag.IntVar(&cfg.changes, "changes", 5000, "HR changes sent after the initial load")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the organisation, the changes, the faults and the kills")
	flag.IntVar(&cfg.maxActions, "max-actions", 60, "most kills and restarts")
	flag.Float64Var(&cfg.rate, "rate", 40, "changes sent per second (at most; the initial load is sent at once)")
	flag.DurationVar(&cfg.meanInterval, "interval", 3*time.Second, "mean time between chaos actions")
	flag.DurationVar(&cfg.convergeTimeout, "converge-timeout", 10*time.Minute, "how long to wait for the directories to converge")
	flag.DurationVar(&cfg.timeout, "timeout", 40*time.Minute, "the whole run's limit")
	flag.StringVar(&cfg.binDir, "bin", "", "directory with prebuilt hr-ingest, org-model, entra-writer and ad-writer (default: build them)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (logs, JetStream store)")
	flag.Float64Var(&cfg.faultRate, "fault-rate", 0.2, "share of Graph calls that fail")
	flag.IntVar(&cfg.writeQuota, "write-quota", 250, "Graph writes the app may make per 5 s before it is throttled (0: no quota)")
	flag.DurationVar(&cfg.replicationLag, "replication-lag", 2*time.Second, "how long a new Graph object stays invisible")
	flag.BoolVar(&cfg.ad, "ad", true, "run AD too: two ad-writers against a Samba AD DC, restarted during the run")
	flag.StringVar(&cfg.sambaDir, "samba-dir", "", "provision the Samba DC into (or reuse) this directory and keep it (default: a new temporary one, removed)")
	flag.DurationVar(&cfg.adDriftInterval, "ad-drift-interval", time.Minute, "ad-writer's AD_DRIFT_INTERVAL: shorter than its 5m default so that drift passes run while the replicas share the work (0: off)")
	flag.Parse()
	if cfg.changes < 0 || cfg.workers < cfg.units || cfg.units < 1 {
		fmt.Fprintln(os.Stderr, "orgsync-chaos: need changes ≥ 0 and workers ≥ units ≥ 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "orgsync-chaos: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	started := time.Now()
	work, err := os.MkdirTemp("", "orgsync-chaos-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep || err != nil && os.Getenv("ORGSYNC_CHAOS_KEEP_ON_FAILURE") != "" {
			fmt.Printf("work directory kept: %s\n", work)
			return
		}
		_ = os.RemoveAll(work)
	}()
	say := func(format string, args ...any) {
		fmt.Printf("[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}

	binaries, err := binaries(ctx, cfg.binDir, filepath.Join(work, "bin"), cfg.ad)
	if err != nil {
		return err
	}
	say("binaries ready")

	redis, redisURL, err := harness.RedisProc(work)
	if err != nil {
		return err
	}
	if err := redis.Start(); err != nil {
		return err
	}
	defer func() { _ = redis.Kill(syscall.SIGTERM) }()
	if err := harness.WaitFile(ctx, filepath.Join(work, "redis.sock"), 10*time.Second); err != nil {
		return err
	}

	// Random faults on any call (429s and 5xx without a Retry-After: each refused call backs off on
	// its own), and throttling as Graph throttles: an app over its write quota is refused, with
	// Retry-After until the window ends, and every call it makes meanwhile is refused too
	// (HoldThrottle) — so the writers' shared pause (graph.ThrottleTransport) is exercised under
	// load, with two replicas. A random 429 with a Retry-After would pause every call of both
	// replicas each time; Graph does not throttle a client at random.
	faults := emulator.Faults{
		ThrottleRate: cfg.faultRate * 0.4, ServerErrorRate: cfg.faultRate * 0.35, LostAnswerRate: cfg.faultRate * 0.25,
		ReplicationLag: cfg.replicationLag, Seed: cfg.seed,
		WriteQuota: cfg.writeQuota, QuotaWindow: 5 * time.Second, HoldThrottle: true,
	}
	emu := emulator.New(emulator.WithFaults(faults))
	graphURL, stopEmulator, err := serveEmulator(emu)
	if err != nil {
		return err
	}
	defer stopEmulator()

	org := synth.Generate(synth.Options{Workers: cfg.workers, Units: cfg.units, Seed: cfg.seed, Now: time.Now()})
	policy := harness.PolicyYAML
	var dc *sambadc.DC
	var layout harness.ADLayout
	var adEnv []string
	adWriters := 0
	if cfg.ad {
		if dc, layout, err = startDC(ctx, cfg, org, say); err != nil {
			return err
		}
		defer func() {
			if closeErr := dc.Close(); closeErr != nil {
				say("stopping the Samba DC: %v", closeErr)
			}
		}()
		policy, adWriters = harness.PolicyWithAD(layout), 2
		adEnv = append(append(harness.ADWriterEnv(dc), layout.WriterEnv()...), "AD_DRIFT_INTERVAL="+cfg.adDriftInterval.String())
	}

	pipeline, err := harness.StartPipeline(ctx, harness.PipelineOptions{
		Dir: work, Binaries: binaries, GraphURL: graphURL, Writers: 2, RedisURL: redisURL, Policy: policy,
		// A budget shared through Redis, wide enough not to be what the run measures.
		WriterEnv: harness.Env("GRAPH_WRITES_PER_WINDOW", "50000", "GRAPH_WRITE_WINDOW", "10s", "GRAPH_WRITE_BURST", "1000"),
		ADWriters: adWriters, ADWriterEnv: adEnv,
	})
	if err != nil {
		return err
	}
	defer func() { _ = pipeline.Close() }()
	say("pipeline running: JetStream %s, hr-ingest, org-model, 2 entra-writers, emulator %s (faults %.0f%%, replication lag %v)",
		pipeline.NATSURL, graphURL, 100*cfg.faultRate, cfg.replicationLag)
	if cfg.ad {
		say("and %d ad-writers, Samba DC %s (%s), managed OU %s with %d OUs", adWriters, dc.URL, dc.Dir, layout.Root, len(layout.OUs()))
	}

	var requests []harness.Request
	events := 0
	for chunk := range slices.Chunk(org.Events(), 200) {
		requests = append(requests, harness.Request{ID: chunk[0].ID + "-load", Body: synth.Batch(chunk)})
		events += len(chunk)
	}
	changes := org.Changes(synth.ChangeOptions{Count: cfg.changes, Seed: cfg.seed + 1})
	for _, c := range changes {
		requests = append(requests, harness.Request{ID: c.ID, Body: c.Payload()})
	}
	events += len(changes)

	// Send in order, one request at a time, each retried until hr-ingest accepts it.
	sender := harness.NewSender(func() string { return pipeline.HRIngestURL })
	var sent, attempts atomic.Int64
	sendDone := make(chan error, 1)
	loadRequests := len(requests) - len(changes)
	var senderDone sync.WaitGroup
	defer func() { cancel(); senderDone.Wait() }()
	senderDone.Go(func() {
		paced := time.Now()
		for i, r := range requests {
			if i >= loadRequests && cfg.rate > 0 {
				due := paced.Add(time.Duration(float64(i-loadRequests) / cfg.rate * float64(time.Second)))
				select {
				case <-ctx.Done():
					sendDone <- ctx.Err()
					return
				case <-time.After(time.Until(due)):
				}
			} else {
				paced = time.Now()
			}
			n, err := sender.Send(ctx, r.ID, r.Body)
			attempts.Add(int64(n))
			if err != nil {
				sendDone <- err
				return
			}
			sent.Add(1)
		}
		sendDone <- nil
	})

	chaos := &chaos{pipeline: pipeline, dc: dc, rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed^0xca05)), say: say}
	sendErr, chaosErr := chaos.run(ctx, cfg, sendDone, func() string {
		return fmt.Sprintf("%d/%d requests sent", sent.Load(), len(requests))
	})
	if sendErr != nil {
		return fmt.Errorf("sending: %w", sendErr)
	}
	if chaosErr != nil {
		return chaosErr
	}
	say("all %d requests (%d HR events) accepted after %d attempts; %d chaos actions", len(requests), events, attempts.Load(), chaos.actions)
	if err := pipeline.WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}

	say("computing the desired state with org-model's domain (replay.Desired) over the same %d requests", len(requests))
	expected, err := harness.Expected(ctx, filepath.Join(work, "fresh"), policy, requests)
	if err != nil {
		return err
	}
	entraExpected := harness.ForTarget(expected, orgsyncv1.Target_TARGET_ENTRA)
	adExpected := harness.ForTarget(expected, orgsyncv1.Target_TARGET_AD)
	stored, err := hrMessages(ctx, pipeline.NATSURL)
	if err != nil {
		return err
	}

	say("waiting for the directories to converge (up to %v)", cfg.convergeTimeout)
	var entraDiff, adDiff harness.Diff
	var adErr error
	deadline := time.Now().Add(cfg.convergeTimeout)
	for {
		entraDiff = harness.Compare(emu, entraExpected)
		if cfg.ad {
			var snap harness.ADSnapshot
			if snap, adErr = harness.SnapshotAD(dc, layout); adErr == nil {
				adDiff = harness.CompareAD(snap, adExpected, layout)
			}
		}
		converged := entraDiff.Equal() && adErr == nil && adDiff.Equal()
		if converged || time.Now().After(deadline) {
			break
		}
		progress := "Entra " + counts(entraDiff)
		if cfg.ad {
			progress += "; AD " + counts(adDiff)
			if adErr != nil {
				progress += fmt.Sprintf(" (reading the DC: %v)", adErr)
			}
		}
		say("not yet: %s", progress)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	if adErr != nil {
		return fmt.Errorf("reading the Samba DC: %w", adErr)
	}

	stats := emu.Stats()
	fmt.Printf("\norgsync-chaos summary (seed %d, %v)\n", cfg.seed, time.Since(started).Round(time.Second))
	fmt.Printf("  HR input         %d workers in %d units, then %d changes: %d HR events in %d webhooks (%d attempts)\n",
		cfg.workers, cfg.units, cfg.changes, events, len(requests), attempts.Load())
	fmt.Printf("  stream HR        %d events stored (want %d: every accepted event exactly once)\n", stored, events)
	for _, p := range append(pipeline.Services(), pipeline.NATS) {
		starts, kills, crashes := p.Counts()
		fmt.Printf("  %-16s started %d times, killed -9 %d times, exited by itself %d times\n", p.Name, starts, kills, crashes)
	}
	fmt.Printf("  NATS restarts    %d (graceful %d, kill -9 %d)\n", chaos.natsRestarts, chaos.natsRestarts-chaos.natsKills, chaos.natsKills)
	if cfg.ad {
		fmt.Printf("  Samba DC         restarted %d times (stopped, started again on the same domain)\n", dc.Restarts())
	}
	fmt.Printf("  Graph emulator   %d requests, %d write attempts, %d successful writes, errors %v\n",
		stats.Requests, stats.WriteRequests, stats.SuccessfulWrites, stats.ErrorCodes)
	fmt.Printf("  Entra desired    %d users, %d groups, %d memberships (fresh org-model)\n", entraDiff.Users, entraDiff.Groups, entraDiff.Memberships)
	fmt.Printf("  Entra difference %s\n", counts(entraDiff))
	printLines(entraDiff)
	if cfg.ad {
		fmt.Printf("  AD desired       %d users, %d groups, %d memberships (fresh org-model); %d retired accounts (disabled in the leavers' OU, not desired)\n",
			adDiff.Users, adDiff.Groups, adDiff.Memberships, adDiff.Retired)
		fmt.Printf("  AD difference    %s\n", counts(adDiff))
		printLines(adDiff)
	} else {
		fmt.Printf("  AD               not run (-ad=false)\n")
	}
	for _, check := range []struct {
		name     string
		target   orgsyncv1.Target
		diff     harness.Diff
		expected []*orgsyncv1.DesiredObject
	}{
		{"Entra", orgsyncv1.Target_TARGET_ENTRA, entraDiff, entraExpected},
		{"AD", orgsyncv1.Target_TARGET_AD, adDiff, adExpected},
	} {
		if check.diff.Equal() {
			continue
		}
		diagnosis, err := harness.Diagnose(ctx, pipeline.NATSURL, check.target, check.expected)
		if err != nil {
			return fmt.Errorf("diagnosing %s: %w", check.name, err)
		}
		fmt.Printf("  %-5s diagnosis  DIRECTORY (running org-model) differs from the fresh run in %d objects; writers' newest results %v\n",
			check.name, diagnosis.DesiredDiffers, diagnosis.Outcomes)
		for _, line := range append(diagnosis.Examples, diagnosis.Failed...) {
			fmt.Printf("    %s\n", line)
		}
	}
	lost := stored != uint64(events)
	if entraDiff.Equal() && adDiff.Equal() && !lost {
		fmt.Println("RESULT: converged — the directories hold exactly the desired state")
		return nil
	}
	fmt.Println("RESULT: DIFFERENT")
	return errors.New("the directories do not hold the desired state")
}

// startDC starts the Samba DC (waiting for its lock) and gives it an empty managed OU tree with an
// OU per second-level unit of org, where PolicyWithAD puts their workers.
func startDC(ctx context.Context, cfg config, org *synth.Org, say func(string, ...any)) (*sambadc.DC, harness.ADLayout, error) {
	root, err := harness.RepoRoot(".")
	if err != nil {
		return nil, harness.ADLayout{}, err
	}
	dc, err := sambadc.Start(ctx, sambadc.Options{
		Script: filepath.Join(root, "scripts", "samba-dc.sh"), Dir: cfg.sambaDir,
		Waiting: func(lockFile string) {
			say("waiting for the Samba DC lock %s: another test or run is using the DC", lockFile)
		},
	})
	if err != nil {
		return nil, harness.ADLayout{}, err
	}
	dc.Keep = cfg.keep
	var names []string
	for _, u := range org.Units {
		if u.Depth == 2 {
			names = append(names, u.Name)
		}
	}
	layout := harness.NewADLayout(dc.BaseDN, names)
	if err := harness.PrepareAD(dc, layout); err != nil {
		return nil, layout, errors.Join(err, dc.Close())
	}
	say("Samba DC ready in %s", dc.Dir)
	return dc, layout, nil
}

func counts(d harness.Diff) string {
	return fmt.Sprintf("%d missing, %d wrong, %d duplicate, %d stray", d.Missing, d.Wrong, d.Duplicate, d.Stray)
}

// printLines prints up to ten differences of each kind of object.
func printLines(d harness.Diff) {
	shown := map[string]int{}
	for _, line := range d.Lines {
		kind, _, _ := strings.Cut(line, " ")
		if shown[kind]++; shown[kind] <= 10 {
			fmt.Printf("    %s\n", line)
		}
	}
	if len(d.Lines) > 30 {
		fmt.Printf("    (%d differences in all)\n", len(d.Lines))
	}
}

func binaries(ctx context.Context, binDir, buildDir string, ad bool) (map[string]string, error) {
	services := []string{"hr-ingest", "org-model", "entra-writer"}
	if ad {
		services = append(services, "ad-writer")
	}
	if binDir != "" {
		paths := map[string]string{}
		for _, s := range services {
			paths[s] = filepath.Join(binDir, s)
			if _, err := os.Stat(paths[s]); err != nil {
				return nil, err
			}
		}
		return paths, nil
	}
	root, err := harness.RepoRoot(".")
	if err != nil {
		return nil, err
	}
	return harness.Build(ctx, root, buildDir, services...)
}

// serveEmulator serves emu on a free loopback port and returns its Graph base URL.
func serveEmulator(emu *emulator.Server) (string, func(), error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", emu)
	mux.Handle("GET "+emulator.StatsPath, emu.StatsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(listener) })
	return "http://" + listener.Addr().String() + "/v1.0", func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		wg.Wait()
	}, nil
}

func hrMessages(ctx context.Context, url string) (uint64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, stream.HR)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}
