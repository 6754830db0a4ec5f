package model

import (
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/sample"
)

// parallelPolicy is the golden policy with AD, an expression that fails for some workers (no
// custom attribute "badge") and one that reads a worker's id, which no memo shares.
const parallelPolicy = `
timezone: Europe/London
scope: 'worker.company == "Example Ltd"'
mapping:
  entra:
    department: 'coalesce([worker.department, unit.name])'
    officeLocation: 'switch(worker.location, worker.location, {"New York": "NYC"})'
    extensionAttribute1: 'formatDate(worker.start_date, "yyyy-MM-dd")'
    extensionAttribute2: 'unit_path.join(" / ")'
    extensionAttribute3: 'worker.custom_attributes["badge"]'
    extensionAttribute4: 'worker.worker_id + "@" + unit.org_unit_id'
  ad:
    parentDistinguishedName: '"OU=" + escapeRDN(unit.name) + ",OU=Staff,DC=corp,DC=example"'
groups:
  rollup:
    displayName: '"All - " + unit.name'
  managers:
    enabled: true
  rules:
    - key: london
      filter: 'worker.location == "London"'
    - key: contractors
      filter: 'employment_type == "contractor"'
    - key: below-three
      filter: '"u0003" in unit_ids'
lifecycle:
  preCreateDays: 7
  membershipGrace: 7d
`

// TestParallelComputeIsTheSequentialOne: a full recompute on every core gives the objects and
// the problems (expression errors included) of a recompute in turn, and so do the events after.
func TestParallelComputeIsTheSequentialOne(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Cleanup(func() { runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) })
	}
	pol := mustPolicy(t, parallelPolicy)
	events := sample.Company(sample.Options{Workers: 3000, Units: 150, Seed: 3, Now: goldenNow, Lifecycle: true})
	for i, event := range events {
		if w := event.GetWorker(); w != nil && i%3 == 0 {
			w.CustomAttributes = map[string]string{"badge": w.GetWorkerId()}
		}
	}
	compute := func(parallelAt int) ([]*orgsyncv1.DesiredObject, []Problem, *Model) {
		saved := parallelWorkersAt
		parallelWorkersAt = parallelAt
		t.Cleanup(func() { parallelWorkersAt = saved })
		m := New(pol, orgsyncv1.Target_TARGET_ENTRA, orgsyncv1.Target_TARGET_AD)
		for _, event := range events {
			m.Record(event, goldenNow)
		}
		return m.ComputeAll(goldenNow), m.Problems(), m
	}
	inTurn, inTurnProblems, _ := compute(1 << 30)
	parallel, parallelProblems, _ := compute(1)
	if len(inTurn) < 6000 {
		t.Fatalf("%d objects: the company is too small to tell", len(inTurn))
	}
	if diff := cmp.Diff(inTurn, parallel, protocmp.Transform()); diff != "" {
		t.Errorf("objects (-in turn +parallel):\n%s", diff)
	}
	if len(inTurnProblems) < 100 {
		t.Fatalf("%d problems: the failing expression should give one per worker without a badge", len(inTurnProblems))
	}
	if diff := cmp.Diff(inTurnProblems, parallelProblems); diff != "" {
		t.Errorf("problems (-in turn +parallel):\n%s", diff)
	}
}
