// Package sample generates synthetic companies — an org tree and its workers as HR events — for
// the golden-file test and the benchmarks. The same size and seed always give the same company.
package sample

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

var (
	givenNames  = []string{"Jane", "John", "Amara", "Zoë", "José", "Björn", "Siobhán", "Wei", "Priya", "Léa", "Mohammed", "Olga", "Kwame", "Ana", "Sam", "Noah", "Emma", "Ingrid", "Luca", "Mei"}
	familyNames = []string{"Doe", "Smith", "Okafor", "O'Brien", "Müller", "García", "Nguyen", "Kowalski", "Åberg", "Patel", "Rossi", "Dubois", "Tanaka", "Silva", "Jones", "Ng"}
	unitNames   = []string{"Sales", "Marketing", "Finance", "Engineering", "Support", "Legal", "People", "Operations", "Research", "Design", "Security", "Data"}
	locations   = []string{"London", "Paris", "Berlin", "New York", "Singapore"}
	titles      = []string{"Analyst", "Engineer", "Account Executive", "Designer", "Consultant", "Specialist", "Coordinator"}
)

// Options say what to generate.
type Options struct {
	Workers int
	Units   int
	Seed    uint64
	// Now is the moment the company is described at; start and end dates spread around it.
	Now time.Time
	// Lifecycle mixes in future hires, leavers and terminated workers when set.
	Lifecycle bool
}

// Company returns the HR events of a synthetic company: the units (parents before children), then
// the workers. Unit i's manager is its first worker; a worker's manager is their unit's manager,
// or the parent unit's manager for the unit manager.
func Company(opts Options) []*orgsyncv1.HREvent {
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	occurred := timestamppb.New(opts.Now.Add(-24 * time.Hour))
	units := make([]*orgsyncv1.OrgUnit, opts.Units)
	for i := range units {
		unit := &orgsyncv1.OrgUnit{OrgUnitId: fmt.Sprintf("u%04d", i), CostCenter: fmt.Sprintf("CC%03d", i%200)}
		if i == 0 {
			unit.Name = "Example Ltd"
		} else {
			// Each unit hangs under one of the earlier units, which keeps the tree acyclic and
			// about log(n) deep.
			parent := units[rng.IntN(max(1, min(i, 1+i/3)))]
			unit.ParentOrgUnitId = parent.GetOrgUnitId()
			unit.Name = fmt.Sprintf("%s %d", unitNames[i%len(unitNames)], i)
		}
		units[i] = unit
	}
	workers := make([]*orgsyncv1.Worker, opts.Workers)
	for i := range workers {
		unit := units[i%len(units)]
		if i >= len(units) {
			unit = units[rng.IntN(len(units))]
		}
		w := &orgsyncv1.Worker{
			WorkerId:         fmt.Sprintf("E%06d", i),
			Name:             &orgsyncv1.PersonName{GivenName: givenNames[rng.IntN(len(givenNames))], FamilyName: familyNames[rng.IntN(len(familyNames))]},
			JobTitle:         titles[rng.IntN(len(titles))],
			OrgUnitId:        unit.GetOrgUnitId(),
			Location:         locations[rng.IntN(len(locations))],
			Company:          "Example Ltd",
			CostCenter:       unit.GetCostCenter(),
			EmploymentType:   orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_EMPLOYEE,
			EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
		}
		if rng.IntN(10) == 0 {
			w.EmploymentType = orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_CONTRACTOR
		}
		start := opts.Now.AddDate(0, 0, -30-rng.IntN(2000))
		if i < len(units) {
			unit.ManagerWorkerId = w.GetWorkerId()
			w.JobTitle = "Head of " + unit.GetName()
		} else if opts.Lifecycle {
			switch rng.IntN(20) {
			case 0: // a future hire
				start = opts.Now.AddDate(0, 0, 1+rng.IntN(30))
			case 1: // a leaver whose end date is ahead
				w.EndDate = date(opts.Now.AddDate(0, 0, 1+rng.IntN(20)))
			case 2: // a leaver whose end date has passed
				w.EndDate = date(opts.Now.AddDate(0, 0, -1-rng.IntN(20)))
			case 3:
				w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
			}
		}
		w.HireDate, w.StartDate = date(start), date(start)
		workers[i] = w
	}
	for i, w := range workers {
		unit := units[i%len(units)]
		if i >= len(units) {
			unit = unitOf(units, w.GetOrgUnitId())
		}
		manager := unit.GetManagerWorkerId()
		if manager == w.GetWorkerId() {
			manager = ""
			if parent := unit.GetParentOrgUnitId(); parent != "" {
				manager = unitOf(units, parent).GetManagerWorkerId()
			}
		}
		w.ManagerWorkerId = manager
	}
	events := make([]*orgsyncv1.HREvent, 0, len(units)+len(workers))
	for _, u := range units {
		events = append(events, &orgsyncv1.HREvent{EventId: "unit-" + u.GetOrgUnitId(), Source: "sample", OccurredAt: occurred,
			Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: u}})
	}
	for _, w := range workers {
		events = append(events, &orgsyncv1.HREvent{EventId: "worker-" + w.GetWorkerId(), Source: "sample", OccurredAt: occurred,
			Payload: &orgsyncv1.HREvent_Worker{Worker: w}})
	}
	return events
}

func unitOf(units []*orgsyncv1.OrgUnit, id string) *orgsyncv1.OrgUnit {
	var n int
	if _, err := fmt.Sscanf(id, "u%d", &n); err != nil || n >= len(units) {
		return nil
	}
	return units[n]
}

func date(t time.Time) *orgsyncv1.Date {
	return &orgsyncv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}
