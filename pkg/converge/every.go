package converge

import (
	"context"
	"time"
)

// Every calls f every interval until ctx ends, and returns nil then: a writer's drift passes and
// entra-writer's binding of gathered memberships. A call that runs longer than the interval
// delays the next one rather than piling up behind it.
func Every(ctx context.Context, interval time.Duration, f func(context.Context)) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			f(ctx)
		}
	}
}
