// Package synth generates synthetic organisations and streams of HR changes for orgsync's scale
// benchmarks and chaos runs. Everything it produces is deterministic from a seed: the same
// Options always give the same organisation, and the same ChangeOptions the same changes.
//
// An organisation has a realistic shape: a unit tree 4 to 8 levels deep, unit sizes skewed (a
// few large units, many small ones, Zipf-distributed), a manager per unit, names with diacritics
// and frequent namesakes (many a "Maria Garcia"), mixed employment types, future hires and
// leavers. Changes are hires, moves, leaves, rehires and attribute updates over simulated days,
// each an HR event in orgsync's canonical webhook format (Standard Webhooks payload shape).
package synth

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Unit is an org unit as the canonical webhook format carries it.
type Unit struct {
	OrgUnitID       string `json:"orgUnitId"`
	Name            string `json:"name"`
	ParentOrgUnitID string `json:"parentOrgUnitId,omitempty"`
	ManagerWorkerID string `json:"managerWorkerId,omitempty"`
	CostCenter      string `json:"costCenter,omitempty"`
	// Depth is 1 for the root unit; it is not sent.
	Depth int `json:"-"`
}

// Name is a person's name.
type Name struct {
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
}

// Worker is a worker as the canonical webhook format carries it.
type Worker struct {
	WorkerID         string `json:"workerId"`
	Name             Name   `json:"name"`
	JobTitle         string `json:"jobTitle,omitempty"`
	OrgUnitID        string `json:"orgUnitId"`
	ManagerWorkerID  string `json:"managerWorkerId,omitempty"`
	Location         string `json:"location,omitempty"`
	Company          string `json:"company,omitempty"`
	CostCenter       string `json:"costCenter,omitempty"`
	EmploymentType   string `json:"employmentType"`
	EmploymentStatus string `json:"employmentStatus"`
	HireDate         string `json:"hireDate,omitempty"`
	StartDate        string `json:"startDate,omitempty"`
	EndDate          string `json:"endDate,omitempty"`
}

// Kind says what an Event does.
type Kind string

// The kinds of event.
const (
	KindUnit   Kind = "unit"   // an org unit created or changed
	KindHire   Kind = "hire"   // a new worker (in the initial load: every worker)
	KindMove   Kind = "move"   // a worker moves to another unit (and manager)
	KindLeave  Kind = "leave"  // a worker leaves (end date, status terminated)
	KindRehire Kind = "rehire" // a leaver comes back with a new start date
	KindUpdate Kind = "update" // a new job title or location
)

// Event is one HR change, ready to send as a canonical webhook.
type Event struct {
	// ID is the webhook-id: unique and stable for a seed, so a resend is stored once.
	ID   string
	Kind Kind
	// Day is the simulated day, 0 for the initial load.
	Day int
	// At is when the change happened in HR (the payload's timestamp).
	At     time.Time
	Unit   *Unit
	Worker *Worker
}

// Payload is the event's canonical webhook body.
func (e Event) Payload() []byte {
	body, err := json.Marshal(e.payload())
	if err != nil {
		panic(err) // plain structs of strings always marshal
	}
	return body
}

func (e Event) payload() any {
	type envelope struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      any    `json:"data"`
	}
	env := envelope{Timestamp: e.At.UTC().Format(time.RFC3339)}
	if e.Unit != nil {
		env.Type, env.Data = "org_unit.updated", e.Unit
	} else {
		env.Type, env.Data = "worker.updated", e.Worker
	}
	return env
}

// Batch is the body of a canonical batch request carrying events (at most 1000).
func Batch(events []Event) []byte {
	payloads := make([]any, len(events))
	for i, e := range events {
		payloads[i] = e.payload()
	}
	body, err := json.Marshal(payloads)
	if err != nil {
		panic(err)
	}
	return body
}

// Options say what organisation to generate.
type Options struct {
	Workers int
	Units   int
	Seed    uint64
	// Now is the day the organisation is described at; dates spread around it.
	Now time.Time
}

// Org is a generated organisation. Units come parents first; the first worker of each unit
// manages it.
type Org struct {
	Units   []*Unit
	Workers []*Worker
	now     time.Time
	seed    uint64
}

// Name pools. Diacritics are frequent; "Maria Garcia" and its accented form are deliberately
// over-represented, as common names are in real organisations.
var (
	givenNames = []string{
		"Maria", "María", "José", "Zoë", "Björn", "Siobhán", "Léa", "Ana", "João", "François",
		"Jürgen", "Søren", "Ãngela", "Chloé", "Dvořák", "Renée", "Íñigo", "Łukasz", "Ömer", "Saoirse",
		"Jane", "John", "Amara", "Wei", "Priya", "Mohammed", "Olga", "Kwame", "Sam", "Noah",
		"Emma", "Ingrid", "Luca", "Mei", "David", "Sarah", "Michael", "Fatima", "Hiroshi", "Aiko",
	}
	familyNames = []string{
		"Garcia", "García", "Müller", "Nguyễn", "Åberg", "O'Brien", "Kowalski", "Dubois", "Ferrández", "Çelik",
		"Smith", "Okafor", "Patel", "Rossi", "Tanaka", "Silva", "Jones", "Ng", "Schröder", "Núñez",
		"Brontë", "Øvergård", "Lindqvist", "Martínez", "López", "Kim", "Chen", "Wójcik", "Horváth", "Ibáñez",
	}
	unitNames = []string{"Sales", "Marketing", "Finance", "Engineering", "Support", "Legal", "People", "Operations", "Research", "Design", "Security", "Data", "Procurement", "Logistics", "Quality"}
	locations = []string{"London", "Paris", "Berlin", "New York", "Singapore", "São Paulo", "Zürich", "Kraków"}
	titles    = []string{"Analyst", "Engineer", "Account Executive", "Designer", "Consultant", "Specialist", "Coordinator", "Técnico"}
)

// Generate returns an organisation of opts.Workers workers in opts.Units units (at least one
// unit; at least as many workers as units, so every unit has a manager).
func Generate(opts Options) *Org {
	units := max(opts.Units, 1)
	workers := max(opts.Workers, units)
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed0f0a9))
	o := &Org{now: day(opts.Now), seed: opts.Seed}

	// The tree: a spine as deep as the chosen depth, then every other unit under a random unit
	// above the deepest level, shallow parents favoured (they have more children in practice).
	depth := 4 + rng.IntN(5)
	for i := range units {
		u := &Unit{OrgUnitID: fmt.Sprintf("u%04d", i), CostCenter: fmt.Sprintf("CC%03d", i%97), Depth: 1}
		switch {
		case i == 0:
			u.Name = "Example Ltd"
		case i < depth:
			parent := o.Units[i-1]
			u.ParentOrgUnitID, u.Depth = parent.OrgUnitID, parent.Depth+1
		default:
			var parent *Unit
			for {
				// Two draws, the shallower kept: skews parents towards the top of the tree.
				a, b := o.Units[rng.IntN(len(o.Units))], o.Units[rng.IntN(len(o.Units))]
				parent = a
				if b.Depth < a.Depth {
					parent = b
				}
				if parent.Depth < depth {
					break
				}
			}
			u.ParentOrgUnitID, u.Depth = parent.OrgUnitID, parent.Depth+1
		}
		if i > 0 {
			u.Name = fmt.Sprintf("%s %d", unitNames[rng.IntN(len(unitNames))], i)
		}
		o.Units = append(o.Units, u)
	}

	// Unit sizes: the first len(units) workers head one unit each; the rest are spread over the
	// units by a Zipf law over a shuffled ranking, so sizes are skewed but not by unit number.
	rank := rng.Perm(units)
	zipf := rand.NewZipf(rng, 1.3, 2, uint64(units-1))
	for i := range workers {
		unit := o.Units[i%units]
		if i >= units {
			unit = o.Units[rank[zipf.Uint64()]]
		}
		w := o.newWorker(rng, i, unit)
		if i < units {
			unit.ManagerWorkerID = w.WorkerID
			w.JobTitle = "Head of " + unit.Name
			w.EmploymentType = "employee"
		} else {
			o.lifecycle(rng, w)
		}
		o.Workers = append(o.Workers, w)
	}
	for _, w := range o.Workers {
		w.ManagerWorkerID = o.managerFor(w.WorkerID, w.OrgUnitID)
	}
	return o
}

// newWorker makes worker number i in unit, active since a day in the last ~5 years.
func (o *Org) newWorker(rng *rand.Rand, i int, unit *Unit) *Worker {
	name := Name{GivenName: givenNames[rng.IntN(len(givenNames))], FamilyName: familyNames[rng.IntN(len(familyNames))]}
	if rng.IntN(25) == 0 {
		name = Name{GivenName: "Maria", FamilyName: "Garcia"}
	}
	start := date(o.now.AddDate(0, 0, -30-rng.IntN(1800)))
	w := &Worker{
		WorkerID: fmt.Sprintf("E%06d", i), Name: name,
		JobTitle: titles[rng.IntN(len(titles))], OrgUnitID: unit.OrgUnitID,
		Location: locations[rng.IntN(len(locations))], Company: "Example Ltd", CostCenter: unit.CostCenter,
		EmploymentType: employmentType(rng), EmploymentStatus: "active", HireDate: start, StartDate: start,
	}
	return w
}

// employmentType draws 80% employees, 12% contractors, 4% interns, 4% temporary staff.
func employmentType(rng *rand.Rand) string {
	switch n := rng.IntN(100); {
	case n < 80:
		return "employee"
	case n < 92:
		return "contractor"
	case n < 96:
		return "intern"
	default:
		return "temporary"
	}
}

// lifecycle makes about 3% future hires, 3% leavers whose end date is ahead and 2% terminated.
func (o *Org) lifecycle(rng *rand.Rand, w *Worker) {
	switch n := rng.IntN(100); {
	case n < 3:
		start := date(o.now.AddDate(0, 0, 1+rng.IntN(60)))
		w.HireDate, w.StartDate = start, start
	case n < 6:
		w.EndDate = date(o.now.AddDate(0, 0, 1+rng.IntN(30)))
	case n < 8:
		w.EndDate = date(o.now.AddDate(0, 0, -1-rng.IntN(25)))
		w.EmploymentStatus = "terminated"
	}
}

// managerFor is the unit's manager, or for the manager the parent unit's manager.
func (o *Org) managerFor(workerID, unitID string) string {
	unit := o.unit(unitID)
	for unit != nil {
		if unit.ManagerWorkerID != "" && unit.ManagerWorkerID != workerID {
			return unit.ManagerWorkerID
		}
		unit = o.unit(unit.ParentOrgUnitID)
	}
	return ""
}

func (o *Org) unit(id string) *Unit {
	var n int
	if _, err := fmt.Sscanf(id, "u%d", &n); err != nil || n < 0 || n >= len(o.Units) {
		return nil
	}
	return o.Units[n]
}

// Events are the organisation's initial load: every unit (parents first), then every worker.
func (o *Org) Events() []Event {
	at := o.now.AddDate(0, 0, -1).Add(8 * time.Hour)
	events := make([]Event, 0, len(o.Units)+len(o.Workers))
	for _, u := range o.Units {
		unit := *u
		events = append(events, Event{ID: fmt.Sprintf("synth-%d-unit-%s", o.seed, u.OrgUnitID), Kind: KindUnit, At: at, Unit: &unit})
	}
	for _, w := range o.Workers {
		worker := *w
		events = append(events, Event{ID: fmt.Sprintf("synth-%d-worker-%s", o.seed, w.WorkerID), Kind: KindHire, At: at, Worker: &worker})
	}
	return events
}

// Mix is the share of each kind of change, as weights (they need not sum to 1).
type Mix struct {
	Hire, Move, Leave, Rehire, Update float64
}

// DefaultMix is a mix seen in HR feeds of established organisations: attribute updates and
// moves dominate, hires slightly outnumber leaves (a growing company), rehires are rare.
var DefaultMix = Mix{Hire: 0.22, Move: 0.25, Leave: 0.18, Rehire: 0.05, Update: 0.30}

// ChangeOptions say what stream of changes to generate.
type ChangeOptions struct {
	// Count is the number of changes.
	Count int
	// Days is how many simulated days they spread over, ending the day before the organisation's
	// Now (default: Count/20, about twenty HR changes a working day, at least 1).
	Days int
	Seed uint64
	// Mix weighs the kinds of change; zero uses DefaultMix.
	Mix Mix
}

// Changes returns a stream of changes to the organisation, in the order they happen, and
// applies them to o (so Workers and Units describe the organisation after them). Each worker
// event carries the worker's whole record, as HR systems send it.
func (o *Org) Changes(opts ChangeOptions) []Event {
	mix := opts.Mix
	if mix == (Mix{}) {
		mix = DefaultMix
	}
	days := opts.Days
	if days <= 0 {
		days = max(1, opts.Count/20)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0xc4a9e5))
	zipf := rand.NewZipf(rng, 1.3, 2, uint64(len(o.Units)-1))
	rank := rng.Perm(len(o.Units))
	heads := map[string]bool{}
	for _, u := range o.Units {
		heads[u.ManagerWorkerID] = true
	}
	var active, left []*Worker
	for _, w := range o.Workers {
		switch {
		case heads[w.WorkerID]:
		case w.EmploymentStatus == "terminated":
			left = append(left, w)
		case w.EndDate == "":
			active = append(active, w)
		}
	}
	total := mix.Hire + mix.Move + mix.Leave + mix.Rehire + mix.Update
	first := o.now.AddDate(0, 0, -days)
	events := make([]Event, 0, opts.Count)
	for i := range opts.Count {
		d := i * days / max(opts.Count, 1)
		today := first.AddDate(0, 0, d)
		at := today.Add(8*time.Hour + time.Duration(i%3600)*time.Second)
		kind := KindHire
		switch x := rng.Float64() * total; {
		case x < mix.Hire:
		case x < mix.Hire+mix.Move:
			kind = KindMove
		case x < mix.Hire+mix.Move+mix.Leave:
			kind = KindLeave
		case x < mix.Hire+mix.Move+mix.Leave+mix.Rehire:
			kind = KindRehire
		default:
			kind = KindUpdate
		}
		if kind == KindRehire && len(left) == 0 || kind != KindHire && kind != KindRehire && len(active) == 0 {
			kind = KindHire
		}
		var w *Worker
		switch kind {
		case KindHire:
			unit := o.Units[rank[zipf.Uint64()]]
			w = o.newWorker(rng, len(o.Workers), unit)
			// New hires start on the day or a little after (some are still ahead at the end).
			start := date(today.AddDate(0, 0, rng.IntN(14)))
			w.HireDate, w.StartDate = start, start
			w.ManagerWorkerID = o.managerFor(w.WorkerID, unit.OrgUnitID)
			o.Workers = append(o.Workers, w)
			active = append(active, w)
		case KindMove:
			w = active[rng.IntN(len(active))]
			// A move goes somewhere else (a few draws; with one unit it stays a no-op).
			unit := o.Units[rank[zipf.Uint64()]]
			for try := 0; unit.OrgUnitID == w.OrgUnitID && try < 10; try++ {
				unit = o.Units[rng.IntN(len(o.Units))]
			}
			w.OrgUnitID, w.CostCenter = unit.OrgUnitID, unit.CostCenter
			w.ManagerWorkerID = o.managerFor(w.WorkerID, unit.OrgUnitID)
		case KindLeave:
			at := rng.IntN(len(active))
			w = active[at]
			active[at] = active[len(active)-1]
			active = active[:len(active)-1]
			w.EndDate, w.EmploymentStatus = date(today), "terminated"
			if w.StartDate > w.EndDate {
				w.StartDate, w.HireDate = w.EndDate, w.EndDate
			}
			left = append(left, w)
		case KindRehire:
			at := rng.IntN(len(left))
			w = left[at]
			left[at] = left[len(left)-1]
			left = left[:len(left)-1]
			start := date(today.AddDate(0, 0, 1))
			w.HireDate, w.StartDate, w.EndDate, w.EmploymentStatus = start, start, "", "active"
			w.ManagerWorkerID = o.managerFor(w.WorkerID, w.OrgUnitID)
			active = append(active, w)
		case KindUpdate:
			// An update changes something: a new title or a new location.
			w = active[rng.IntN(len(active))]
			if rng.IntN(2) == 0 {
				w.JobTitle = other(rng, titles, w.JobTitle)
			} else {
				w.Location = other(rng, locations, w.Location)
			}
		}
		worker := *w
		events = append(events, Event{ID: fmt.Sprintf("synth-%d-%d-change-%d", o.seed, opts.Seed, i), Kind: kind, Day: d + 1, At: at, Worker: &worker})
	}
	return events
}

// other draws a value from values different from current.
func other(rng *rand.Rand, values []string, current string) string {
	i := rng.IntN(len(values) - 1)
	if values[i] == current {
		return values[len(values)-1]
	}
	return values[i]
}

func day(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func date(t time.Time) string { return t.Format(time.DateOnly) }
