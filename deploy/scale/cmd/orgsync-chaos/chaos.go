package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/orgsync/orgsync/deploy/scale/internal/harness"
)

// chaos kills and restarts the pipeline's processes at random moments drawn from its rng.
type chaos struct {
	pipeline                *harness.Pipeline
	rng                     *rand.Rand
	say                     func(string, ...any)
	actions                 int
	natsRestarts, natsKills int
	lastAction              string
}

// run acts until the sender is done and a few more actions have hit the writers' catch-up, or
// until cfg.maxActions. Every service is killed at least once before random choices start, and
// JetStream restarted. It returns the sender's error and its own.
func (c *chaos) run(ctx context.Context, cfg config, sendDone <-chan error, progress func() string) (error, error) {
	targets := append(c.pipeline.Services(), c.pipeline.NATS)
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
		var target *harness.Proc
		if c.actions < len(order) {
			target = targets[order[c.actions]]
		} else {
			target = targets[c.rng.IntN(len(targets))]
		}
		if err := c.act(ctx, target); err != nil {
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

func (c *chaos) act(ctx context.Context, target *harness.Proc) error {
	down := time.Duration(c.rng.IntN(1500)) * time.Millisecond
	signal := syscall.SIGKILL
	if target == c.pipeline.NATS {
		c.natsRestarts++
		if c.rng.IntN(2) == 0 {
			signal = syscall.SIGTERM
		} else {
			c.natsKills++
		}
	}
	if err := target.Kill(signal); err != nil {
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
	c.lastAction = fmt.Sprintf("%s %s, down %v", name, target.Name, down)
	return nil
}
