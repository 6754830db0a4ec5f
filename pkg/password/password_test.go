package password

import (
	"strings"
	"testing"
)

func TestNewHasEveryClassAnywhere(t *testing.T) {
	seen := map[string]bool{}
	// How often each position holds each class: with the classes shuffled, none of the first
	// four positions always holds the same class.
	firstClass := map[int]map[string]int{}
	const n = 2000
	for range n {
		p, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != Length {
			t.Fatalf("password of %d characters, want %d", len(p), Length)
		}
		for name, set := range map[string]string{"lower": lowers, "upper": uppers, "digit": digits, "symbol": symbols} {
			if !strings.ContainsAny(p, set) {
				t.Fatalf("a password lacks a %s", name)
			}
			for i := range 4 {
				if strings.IndexByte(set, p[i]) >= 0 {
					if firstClass[i] == nil {
						firstClass[i] = map[string]int{}
					}
					firstClass[i][name]++
				}
			}
		}
		if seen[p] {
			t.Fatal("a password came twice")
		}
		seen[p] = true
	}
	for i := range 4 {
		for name, count := range firstClass[i] {
			if count == n {
				t.Errorf("position %d held a %s in every one of %d passwords: the classes are not shuffled", i, name, n)
			}
		}
	}
}
