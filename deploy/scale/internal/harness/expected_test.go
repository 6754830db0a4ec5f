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
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// content renders desired objects without revisions and causes, sorted, to compare two runs.
func content(t *testing.T, objects []*orgsyncv1.DesiredObject) []string {
	t.Helper()
	var out []string
	for _, obj := range objects {
		path, err := stream.ObjectPath(obj)
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
// misses exactly all of it.
func TestExpected(t *testing.T) {
	tests := []struct {
		name                    string
		workers, units, changes int
	}{
		{name: "initial load only", workers: 40, units: 6},
		{name: "with changes", workers: 40, units: 6, changes: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := synth.Generate(synth.Options{Workers: tt.workers, Units: tt.units, Seed: 5, Now: time.Now()})
			requests := []Request{{ID: "load", Body: synth.Batch(org.Events())}}
			for _, c := range org.Changes(synth.ChangeOptions{Count: tt.changes, Seed: 6}) {
				requests = append(requests, Request{ID: c.ID, Body: c.Payload()})
			}
			first, err := Expected(t.Context(), t.TempDir(), requests)
			if err != nil {
				t.Fatal(err)
			}
			second, err := Expected(t.Context(), t.TempDir(), requests)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(content(t, first), content(t, second)); diff != "" {
				t.Errorf("two fresh runs differ (-first +second):\n%s", diff)
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
