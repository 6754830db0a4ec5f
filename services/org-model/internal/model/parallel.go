package model

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// parallelWorkersAt is how many workers a recompute must have before it computes them on every
// core (a full recompute); fewer, as after one HR event, are computed in turn. A variable so that
// a test can make every recompute parallel.
var parallelWorkersAt = 2048

// computedWorker is one worker's objects and last expression error.
type computedWorker struct {
	objects   []*orgsyncv1.DesiredObject
	evalError string
}

// computeWorkers computes the objects of the worker owners among owners on GOMAXPROCS goroutines,
// which it waits for, and returns them by the owners' index; nil when there are too few workers
// or only one core, and recompute computes them in turn. A worker's objects depend only on the
// model, which no goroutine changes meanwhile, so the result is the same as in turn.
func (m *Model) computeWorkers(owners []owner, now time.Time) []computedWorker {
	procs := runtime.GOMAXPROCS(0)
	workers := 0
	for _, o := range owners {
		if o.kind == 'w' {
			workers++
		}
	}
	if procs < 2 || workers < parallelWorkersAt {
		return nil
	}
	// The unit chains are cached first: computing a worker then only reads the model.
	for _, o := range owners {
		if st := m.workers[o.id]; o.kind == 'w' && st != nil && st.current != nil {
			m.cachedUnitChain(st.current.record.GetOrgUnitId())
		}
	}
	out := make([]computedWorker, len(owners))
	const batch = 256
	var next atomic.Int64
	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			c := workerComputation{memo: policy.NewMemo()}
			var objects []*orgsyncv1.DesiredObject
			for {
				start := int(next.Add(batch)) - batch
				if start >= len(owners) {
					return
				}
				for i := start; i < min(start+batch, len(owners)); i++ {
					if owners[i].kind != 'w' {
						continue
					}
					c.evalError = ""
					// The workers' objects go one after the other in one slice; a worker's
					// part stays valid when the slice grows into a new array.
					start := len(objects)
					objects = m.computeWorker(objects, m.workers[owners[i].id], now, &c)
					out[i].objects = objects[start:len(objects):len(objects)]
					out[i].evalError = c.evalError
				}
			}
		})
	}
	wg.Wait()
	return out
}
