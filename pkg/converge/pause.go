package converge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/stream"
)

// Pause is a writer's one pause: while the target refuses the credentials or cannot be reached,
// the writer stops taking messages (burning their attempts on it would lose them), probes the
// target, and resumes when it answers. Its methods are safe for concurrent use.
type Pause struct {
	logger *slog.Logger

	mu     sync.Mutex
	reason string
	paused chan struct{} // closed while paused
}

// NewPause returns a Pause that is not paused.
func NewPause(logger *slog.Logger) *Pause {
	return &Pause{logger: logger, paused: make(chan struct{})}
}

// Enter pauses the writer for reason; a writer already paused keeps its first reason.
func (p *Pause) Enter(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.paused:
	default:
		p.reason = reason
		close(p.paused)
		p.logger.Warn("writer paused until the directory answers", "reason", reason)
	}
}

// Resume ends a pause.
func (p *Pause) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.paused:
		p.paused, p.reason = make(chan struct{}), ""
		p.logger.Info("directory answers again: writer resumed")
	default:
	}
}

// Paused reports whether the writer is paused, and why.
func (p *Pause) Paused() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.paused:
		return true, p.reason
	default:
		return false, ""
	}
}

// done returns a channel closed while paused.
func (p *Pause) done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// Consumer is how a writer takes DIRECTORY: batches of up to BatchSize messages to Handle, a
// pause that stops fetching, and the Probe that ends it.
type Consumer struct {
	Consumer  jetstream.Consumer
	BatchSize int
	Handle    stream.BatchHandler
	Pause     *Pause
	// Probe asks the target whether it answers (and accepts the credentials) again; it is
	// called every ProbeEvery while paused.
	Probe      func(context.Context) error
	ProbeEvery time.Duration
	Logger     *slog.Logger
}

// Run consumes until ctx ends, stepping aside while the writer is paused: it stops fetching,
// probes the target every ProbeEvery, and resumes once the probe passes.
func (c Consumer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		// A writer paused already (by the previous round, or before Run) fetches nothing
		// until its probe passes.
		if err := c.waitForTarget(ctx); err != nil {
			return nil
		}
		paused := c.Pause.done()
		consumeCtx, stop := context.WithCancel(ctx)
		// Stops consuming when the writer pauses; exits when consuming stops either way.
		go func() {
			select {
			case <-paused:
				stop()
			case <-consumeCtx.Done():
			}
		}()
		// A batch in hand is reported in progress every third of the AckWait, so the AckWait
		// can be short: after a replica dies, its batch is delivered to the next active one soon.
		var opts stream.ConsumeOptions
		if info := c.Consumer.CachedInfo(); info != nil {
			opts.InProgressEvery = info.Config.AckWait / 3
		}
		err := stream.ConsumeBatch(consumeCtx, c.Consumer, c.BatchSize, c.Handle, opts)
		stop()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// waitForTarget probes the target until it answers, then resumes the writer.
func (c Consumer) waitForTarget(ctx context.Context) error {
	ticker := time.NewTicker(c.ProbeEvery)
	defer ticker.Stop()
	for {
		if paused, _ := c.Pause.Paused(); !paused {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		err := c.Probe(ctx)
		if err == nil {
			c.Pause.Resume()
			return nil
		}
		c.Logger.Warn("still paused", "probe", err)
	}
}
