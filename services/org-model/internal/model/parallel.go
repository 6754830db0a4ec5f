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

// computedChunk is how many objects and references computeInParallel makes room for at a time.
const computedChunk = 1 << 14

// computedOwner is one owner's objects, their references, and the last expression error.
type computedOwner struct {
	objects   []*orgsyncv1.DesiredObject
	refs      []Ref
	evalError string
}

// computeEach computes each owner's objects and their references, by the owners' index, on every
// core when there are many workers (computeInParallel), and keeps the owners' expression errors.
func (m *Model) computeEach(owners []affectedOwner, now time.Time) []computedOwner {
	computed := m.computeInParallel(owners, now)
	if computed == nil {
		computed = make([]computedOwner, len(owners))
		// About a user and two memberships per worker and target: sized once rather than grown.
		objects := make([]*orgsyncv1.DesiredObject, 0, 3*len(owners)*len(m.targets))
		for i, o := range owners {
			start := len(objects)
			switch o.kind {
			case 'w':
				m.inTurn.evalError = ""
				objects = m.computeWorker(objects, o.st, now, &m.inTurn)
				computed[i].evalError = m.inTurn.evalError
			case 'u':
				objects = append(objects, m.computeUnit(o.id, &computed[i].evalError)...)
			}
			computed[i].objects = objects[start:len(objects):len(objects)]
		}
		// The references in one array, each owner's part of it.
		refs := make([]Ref, len(objects))
		for i, obj := range objects {
			refs[i] = RefOf(obj)
		}
		for i := range computed {
			n := len(computed[i].objects)
			computed[i].refs, refs = refs[:n:n], refs[n:]
		}
	}
	for i, o := range owners {
		switch o.kind {
		case 'w':
			if computed[i].evalError != "" {
				m.evalErrors["worker "+o.id] = computed[i].evalError
			}
		case 'u':
			delete(m.evalErrors, "unit "+o.id)
			if computed[i].evalError != "" {
				m.evalErrors["unit "+o.id] = computed[i].evalError
			}
		case 'g':
			computed[i].objects = m.computeGlobal()
		}
		if len(computed[i].refs) != len(computed[i].objects) {
			refs := make([]Ref, len(computed[i].objects))
			for j, obj := range computed[i].objects {
				refs[j] = RefOf(obj)
			}
			computed[i].refs = refs
		}
	}
	return computed
}

// computeInParallel computes the objects of the worker and unit owners among owners on GOMAXPROCS
// goroutines, which it waits for, and returns them by the owners' index; nil when there are too
// few workers or only one core, and computeEach computes them in turn. An owner's objects depend
// only on the model, which no goroutine changes meanwhile, so the result is the same as in turn.
func (m *Model) computeInParallel(owners []affectedOwner, now time.Time) []computedOwner {
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
	// The unit chains are cached first: computing a worker or a unit then only reads the model.
	for _, o := range owners {
		switch {
		case o.kind == 'w' && o.st.current != nil:
			m.cachedUnitChain(o.st.current.record.GetOrgUnitId())
		case o.kind == 'u':
			m.cachedUnitChain(o.id)
			if unit := m.units[o.id]; unit != nil {
				m.cachedUnitChain(unit.GetParentOrgUnitId())
			}
		}
	}
	out := make([]computedOwner, len(owners))
	const batch = 256
	var next atomic.Int64
	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			c := workerComputation{memo: policy.NewMemo(), managers: map[targetWorker]string{}}
			// The owners' objects and references go one after the other in chunks, which an
			// owner's part is copied to whole: a slice grown by append would keep its first
			// arrays too (the parts made before stay in them), and the references are kept.
			var objects, scratch []*orgsyncv1.DesiredObject
			var refs []Ref
			for {
				start := int(next.Add(batch)) - batch
				if start >= len(owners) {
					return
				}
				for i := start; i < min(start+batch, len(owners)); i++ {
					c.evalError = ""
					switch owners[i].kind {
					case 'w':
						scratch = m.computeWorker(scratch[:0], owners[i].st, now, &c)
					case 'u':
						scratch = append(scratch[:0], m.computeUnit(owners[i].id, &c.evalError)...)
					default:
						continue
					}
					if cap(objects)-len(objects) < len(scratch) {
						size := max(computedChunk, len(scratch))
						objects, refs = make([]*orgsyncv1.DesiredObject, 0, size), make([]Ref, 0, size)
					}
					start := len(objects)
					objects = append(objects, scratch...)
					for _, obj := range scratch {
						refs = append(refs, RefOf(obj))
					}
					out[i].objects = objects[start:len(objects):len(objects)]
					out[i].refs = refs[start:len(refs):len(refs)]
					out[i].evalError = c.evalError
				}
			}
		})
	}
	wg.Wait()
	return out
}
