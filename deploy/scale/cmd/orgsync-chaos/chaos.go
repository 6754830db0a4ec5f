package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/orgsync/orgsync/deploy/scale/internal/harness"
	"github.com/orgsync/orgsync/pkg/sambadc"
)

// chaos kills and restarts the pipeline's processes, and restarts the Samba DC, at random moments
// drawn from its rng.
type chaos struct {
	pipeline *harness.Pipeline
	// dc is the Samba DC, nil when the run has no AD.
	dc                      *sambadc.DC
	rng                     *rand.Rand
	say                     func(string, ...any)
	actions                 int
	natsRestarts, natsKills int
	lastAction              string
}

// target is what one chaos action hits: a process, or the DC.
type target struct {
	proc *harness.Proc
	dc   bool
}

// run acts until the sender is done and a few more actions have hit the writers' catch-up, or
// until cfg.maxActions. Every service is killed at least once before random choices start, and
// JetStream and the DC restarted. It returns the sender's error and its own.
func (c *chaos) run(ctx context.Context, cfg config, sendDone <-chan error, progress func() string) (error, error) {
	var targets []target
	for _, p := range append(c.pipeline.Services(), c.pipeline.NATS) {
		targets = append(targets, target{proc: p})
	}
	if c.dc != nil {
		targets = append(targets, target{dc: true})
	}
	order := c.rng.Perm(len(targets))
	var sendErr error
	sending := true
	afterSending := 3 // actions while the writers catch up
	for c.actions < cfg.maxActions && (sending || afterSending > 0) {
		pause := time.Duration((0.5 + c.rng.Float64()) * float64(cfg.meanInterval))
		select {
		case <-ctx.Done():
			return ctx.Err(), nil
		case sendErr = <-sendDone:
			sending = false
			if sendErr != nil {
				return sendErr, nil
			}
			c.say("sender done: %s", progress())
			continue
		case <-time.After(pause):
		}
		if !sending {
			afterSending--
		}
		var next target
		if c.actions < len(order) {
			next = targets[order[c.actions]]
		} else {
			next = targets[c.rng.IntN(len(targets))]
		}
		if err := c.act(ctx, next); err != nil {
			return nil, err
		}
		c.actions++
		c.say("%s (%s)", c.lastAction, progress())
	}
	if sending {
		select {
		case <-ctx.Done():
			return ctx.Err(), nil
		case sendErr = <-sendDone:
		}
	}
	return sendErr, nil
}

func (c *chaos) act(ctx context.Context, t target) error {
	down := time.Duration(c.rng.IntN(1500)) * time.Millisecond
	if t.dc {
		return c.restartDC(ctx, down)
	}
	signal := syscall.SIGKILL
	if t.proc == c.pipeline.NATS {
		c.natsRestarts++
		if c.rng.IntN(2) == 0 {
			signal = syscall.SIGTERM
		} else {
			c.natsKills++
		}
	}
	if err := t.proc.Kill(signal); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	// Restart whatever is down (a service may have exited on its own meanwhile) and wait until
	// the pipeline is ready again.
	if err := c.pipeline.WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	name := "kill -9"
	if signal == syscall.SIGTERM {
		name = "graceful restart of"
	}
	c.lastAction = fmt.Sprintf("%s %s, down %v", name, t.proc.Name, down)
	return nil
}

// restartDC stops Samba gracefully (a DC that goes away and comes back, not one whose database a
// crash damaged), keeps it down a moment, starts it again on the same domain and waits until the
// ad-writers are ready again, that is, until they reach it.
func (c *chaos) restartDC(ctx context.Context, down time.Duration) error {
	stopped := time.Now()
	if err := c.dc.Stop(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	if err := c.dc.Resume(); err != nil {
		return err
	}
	if err := c.pipeline.WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	c.lastAction = fmt.Sprintf("restart of the Samba DC, down %v, writers ready %v after the stop",
		down, time.Since(stopped).Round(100*time.Millisecond))
	return nil
}
