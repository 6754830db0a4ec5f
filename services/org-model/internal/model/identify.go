package model

import (
	"sync"
	"sync/atomic"

	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Identifying workers during the replay. Giving 100,000 workers their identifiers at start is half
// of the replay (candidates evaluated, free values picked, claims in maps of 200,000 values), and
// it must happen in the order of the HR events, as the first worker to claim a value keeps it. So
// Record hands each refresh's identifiers to a goroutine of their own, in order, and goes on with
// the next event: the two halves of the replay run on two cores.
//
// While that goroutine runs it alone touches the identifier state (m.ids and the normalised
// candidates). Every other call of the model waits for it first (lock, rlock), so no call sees
// the state half-made; Record does not read it during the replay. What the goroutine learns that
// the rest of the model reads is handed back when it is waited for: a renamed worker whose
// identifiers ComputeAll must compare (workerState.identifyDeferred, which only ComputeAll reads),
// and the expression errors of candidates (applied in order, each only if no later refresh of the
// worker dropped it).

// identifyBatch is how many refreshes Record gathers before handing them over: one hand-over per
// worker would cost more than a small identification.
const identifyBatch = 256

// identifySpares is how many identified batches are kept for Record to fill again.
const identifySpares = 4

// identifyRequest is one replay refresh's identifiers to give: the worker's expression variables
// as they were at the refresh, or, for a worker out of scope, its failures to forget.
type identifyRequest struct {
	st   *workerState
	vars policy.WorkerVars
	// refresh is st.replayRefreshes at the refresh, to tell whether a later one followed.
	refresh    uint32
	outOfScope bool
	// units is the model's unitsChanges at the refresh: the goroutine's memo is emptied when
	// it moves, as the model's is.
	units uint64
}

// identifyError is a candidate's expression error met for a refresh.
type identifyError struct {
	st      *workerState
	refresh uint32
	message string
}

// identifyQueue hands the replay's refreshes to the identifying goroutine.
type identifyQueue struct {
	// pending says refreshes were queued and not yet waited for; set only under the
	// model's write lock, read by rlock without it.
	pending atomic.Bool
	// batch is being filled by Record, under the model's write lock.
	batch []identifyRequest
	// mu guards queue, running and spare, which the goroutine reads too.
	mu      sync.Mutex
	queue   [][]identifyRequest
	running bool
	// spare are batches identified already, emptied for Record to fill again (at most
	// identifySpares, dropped once waited for): a replay of 100,000 workers would otherwise make
	// 13 MB of batches for the collector.
	spare [][]identifyRequest
	done  sync.WaitGroup
	// errors are written by the goroutine, and read once it is waited for.
	errors []identifyError
	// memo and units are the goroutine's: its memo of candidates' results (many workers share a
	// name), kept for the units of that count of unit changes.
	memo  *policy.Memo
	units uint64
}

// queueIdentifiers hands a replay refresh's identifiers to the identifying goroutine. vars is
// copied: the refresh's variables are scratch space.
func (m *Model) queueIdentifiers(st *workerState, vars *policy.WorkerVars, outOfScope bool) {
	q := &m.identifying
	request := identifyRequest{st: st, vars: *vars, refresh: st.replayRefreshes, outOfScope: outOfScope, units: m.unitsChanges}
	if q.batch == nil {
		q.mu.Lock()
		if n := len(q.spare); n > 0 {
			q.batch, q.spare = q.spare[n-1], q.spare[:n-1]
		}
		q.mu.Unlock()
		if q.batch == nil {
			q.batch = make([]identifyRequest, 0, identifyBatch)
		}
	}
	q.batch = append(q.batch, request)
	q.pending.Store(true)
	if len(q.batch) == identifyBatch {
		m.handOverIdentifiers()
	}
}

// handOverIdentifiers gives the goroutine the batch gathered, starting it when it is not running.
func (m *Model) handOverIdentifiers() {
	q := &m.identifying
	if len(q.batch) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, q.batch)
	q.batch = nil
	if !q.running {
		q.running = true
		q.done.Add(1)
		go m.identifyQueued()
	}
}

// identifyQueued identifies the batches handed over, in order, until none is left.
func (m *Model) identifyQueued() {
	q := &m.identifying
	defer q.done.Done()
	var done []identifyRequest
	for {
		q.mu.Lock()
		if done != nil && len(q.spare) < identifySpares {
			clear(done) // the workers and their records are not kept alive by a spare batch
			q.spare = append(q.spare, done[:0])
		}
		if len(q.queue) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
		q.mu.Unlock()
		for i := range batch {
			request := &batch[i]
			if q.memo == nil || request.units != q.units {
				q.memo, q.units = policy.NewMemo(), request.units
			}
			request.vars.Memo = q.memo
			if request.outOfScope {
				m.forgetFailures(request.st.id)
				request.st.identifyDeferred = false
				continue
			}
			deferred, evalError := m.identify(request.st.id, &request.vars, true)
			request.st.identifyDeferred = deferred
			if evalError != "" {
				q.errors = append(q.errors, identifyError{request.st, request.refresh, evalError})
			}
		}
		done = batch
	}
}

// waitIdentified hands over what Record gathered, waits until the goroutine has identified
// everything, and keeps the expression errors still standing. The caller holds the write lock.
func (m *Model) waitIdentified() {
	q := &m.identifying
	if !q.pending.Load() {
		return
	}
	m.handOverIdentifiers()
	q.done.Wait()
	for _, e := range q.errors {
		if e.st.replayRefreshes == e.refresh {
			m.evalErrors["worker "+e.st.id] = e.message
		}
	}
	q.errors, q.spare = nil, nil
	q.pending.Store(false)
}

// lock takes the model's write lock once the replay's identifiers are all given.
func (m *Model) lock() {
	m.mu.Lock()
	m.waitIdentified()
}

// rlock takes the model's read lock once the replay's identifiers are all given: waiting needs the
// write lock, and a Record between the two may hand over more.
func (m *Model) rlock() {
	for {
		m.mu.RLock()
		if !m.identifying.pending.Load() {
			return
		}
		m.mu.RUnlock()
		m.lock()
		m.mu.Unlock()
	}
}
