package harness

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/deploy/scale/synth"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// content renders desired objects without revisions and causes, sorted, to compare two runs.
func content(t *testing.T, objects []*orgsyncv1.DesiredObject) []string {
	t.Helper()
	var out []string
	for _, obj := range objects {
		path, err := subject.ObjectPath(obj)
		if err != nil {
			t.Fatal(err)
		}
		var body proto.Message = obj.GetMembership()
		if obj.GetUser() != nil {
			body = obj.GetUser()
		} else if obj.GetGroup() != nil {
			body = obj.GetGroup()
		}
		out = append(out, path+" "+prototext.MarshalOptions{}.Format(body))
	}
	slices.Sort(out)
	return out
}

// TestExpected runs the fresh org-model over a small synthetic organisation twice and checks the
// desired state is the same both times, has a group per unit, and that an empty directory
// misses exactly all of it; with the AD policy, the same for target ad, every user placed in an
// OU of the layout.
func TestExpected(t *testing.T) {
	tests := []struct {
		name                    string
		workers, units, changes int
		ad                      bool
	}{
		{name: "initial load only", workers: 40, units: 6},
		{name: "with changes", workers: 40, units: 6, changes: 60},
		{name: "with changes and AD", workers: 40, units: 6, changes: 60, ad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := synth.Generate(synth.Options{Workers: tt.workers, Units: tt.units, Seed: 5, Now: time.Now()})
			requests := []Request{{ID: "load", Body: synth.Batch(org.Events())}}
			for _, c := range org.Changes(synth.ChangeOptions{Count: tt.changes, Seed: 6}) {
				requests = append(requests, Request{ID: c.ID, Body: c.Payload()})
			}
			policy := PolicyYAML
			var unitOUs []string
			for _, u := range org.Units {
				if u.Depth == 2 {
					unitOUs = append(unitOUs, u.Name)
				}
			}
			layout := NewADLayout("DC=corp,DC=example,DC=test", unitOUs)
			if tt.ad {
				policy = PolicyWithAD(layout)
			}
			both, err := Expected(t.Context(), t.TempDir(), policy, requests)
			if err != nil {
				t.Fatal(err)
			}
			first := ForTarget(both, orgsyncv1.Target_TARGET_ENTRA)
			second, err := Expected(t.Context(), t.TempDir(), policy, requests)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(content(t, both), content(t, second)); diff != "" {
				t.Errorf("two fresh runs differ (-first +second):\n%s", diff)
			}
			ad := ForTarget(both, orgsyncv1.Target_TARGET_AD)
			if got := len(first) + len(ad); got != len(both) {
				t.Errorf("%d entra and %d ad objects of %d", len(first), len(ad), len(both))
			}
			if !tt.ad && len(ad) > 0 {
				t.Errorf("%d ad objects without an AD mapping", len(ad))
			}
			if tt.ad {
				checkADExpected(t, layout, first, ad)
			}
			diff := Compare(fakeDirectory{}, first)
			if diff.Groups != tt.units {
				t.Errorf("%d groups, want one per unit (%d)", diff.Groups, tt.units)
			}
			if diff.Users == 0 || diff.Users > len(org.Workers) {
				t.Errorf("%d users for %d workers", diff.Users, len(org.Workers))
			}
			if got, want := diff.Missing, diff.Users+diff.Groups+diff.Memberships; got != want {
				t.Errorf("an empty directory misses %d objects, want %d", got, want)
			}
			if diff.Stray != 0 || diff.Duplicate != 0 || diff.Wrong != 0 {
				t.Errorf("an empty directory has differences other than missing: %s", fmt.Sprint(diff.Lines[:min(5, len(diff.Lines))]))
			}
		})
	}
}

// checkADExpected checks the AD desired state against Entra's (the same users, groups and
// memberships) and that every user's OU is one the layout creates, and that an empty DC misses
// exactly all of it.
func checkADExpected(t *testing.T, layout ADLayout, entra, ad []*orgsyncv1.DesiredObject) {
	t.Helper()
	entraDiff, adDiff := Compare(fakeDirectory{}, entra), CompareAD(ADSnapshot{}, ad, layout)
	if got, want := [3]int{adDiff.Users, adDiff.Groups, adDiff.Memberships}, [3]int{entraDiff.Users, entraDiff.Groups, entraDiff.Memberships}; got != want {
		t.Errorf("AD users, groups, memberships %v; Entra %v", got, want)
	}
	if got, want := adDiff.Missing, adDiff.Users+adDiff.Groups+adDiff.Memberships; got != want || len(adDiff.Lines) != want {
		t.Errorf("an empty DC misses %d objects (%d differences), want %d", got, len(adDiff.Lines), want)
	}
	ous := map[string]bool{}
	for _, ou := range layout.OUs() {
		ous[dnKey(ou)] = true
	}
	for _, obj := range ad {
		if u := obj.GetUser(); u != nil && !ous[dnKey(layout.userParent(u))] {
			t.Errorf("user %s goes to %q, not an OU of the layout", u.GetWorkerId(), layout.userParent(u))
		}
	}
}
