package model

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWorkerIndexIsASet: removing takes exactly the one id and drops an empty set, on both sides of the size from which a set keeps positions in a map, and a clone
// does not share the original's sets.
func TestWorkerIndexIsASet(t *testing.T) {
	for _, size := range []int{1, 3, idSetIndexedAt - 1, idSetIndexedAt, 3 * idSetIndexedAt} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			index := workerIndex{}
			want := map[string]bool{}
			for i := range size {
				id := fmt.Sprintf("w%03d", i)
				index.add("u1", id)
				want[id] = true
			}
			index.add("", "w-none")
			check := func(step string) {
				t.Helper()
				got := slices.Sorted(slices.Values(index.of("u1")))
				var wantIDs []string
				for id := range want {
					wantIDs = append(wantIDs, id)
				}
				slices.Sort(wantIDs)
				if diff := cmp.Diff(wantIDs, got); diff != "" {
					t.Fatalf("%s: ids (-want +got):\n%s", step, diff)
				}
				if set := index["u1"]; set != nil {
					for i, id := range set.ids {
						if j := set.index(id); j != i {
							t.Fatalf("%s: %s at %d, index says %d", step, id, i, j)
						}
					}
				}
			}
			check("added")
			copied := index.clone()
			index.remove("u1", "w-unknown")
			index.remove("u2", "w000")
			for i := 0; i < size; i += 2 {
				id := fmt.Sprintf("w%03d", i)
				index.remove("u1", id)
				delete(want, id)
				check("removed " + id)
			}
			for i := 1; i < size; i += 2 {
				id := fmt.Sprintf("w%03d", i)
				index.remove("u1", id)
				delete(want, id)
				check("removed " + id)
			}
			if _, ok := index["u1"]; ok {
				t.Errorf("an empty set is kept")
			}
			if _, ok := index[""]; ok {
				t.Errorf("an empty key is indexed")
			}
			if got := len(copied.of("u1")); got != size {
				t.Errorf("the clone lists %d ids after removals from the original, want %d", got, size)
			}
		})
	}
}
