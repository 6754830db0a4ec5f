package model

import (
	"maps"
	"slices"
)

// workerIndex maps a key (a unit id, a manager id) to the workers under it. The replay fills it
// once per worker, and its sets are small (the workers of one unit, the reports of one manager):
// a slice serves them with one allocation and no hashing, and only a set larger than
// idSetIndexedAt also keeps a map from id to position, so that a manager of thousands stays
// linear to fill. The order of a set's ids means nothing.
type workerIndex map[string]*idSet

// idSetIndexedAt is the size from which an idSet keeps positions in a map.
const idSetIndexedAt = 32

type idSet struct {
	ids []string
	pos map[string]int // ids' positions, only when len(ids) ≥ idSetIndexedAt
}

// add adds id to the set of key, which must not hold it: the caller keeps the one key each id is
// under (workerState's indexedUnit, indexedManager), so add does not look for it first, which
// cost a replay of 100,000 workers 70 ms. An empty key is not indexed.
func (index workerIndex) add(key, id string) {
	if key == "" {
		return
	}
	set := index[key]
	if set == nil {
		set = &idSet{}
		index[key] = set
	}
	set.ids = append(set.ids, id)
	switch {
	case set.pos != nil:
		set.pos[id] = len(set.ids) - 1
	case len(set.ids) >= idSetIndexedAt:
		set.pos = make(map[string]int, 2*len(set.ids))
		for i, member := range set.ids {
			set.pos[member] = i
		}
	}
}

// remove removes id from the set of key, and the set when it is left empty.
func (index workerIndex) remove(key, id string) {
	set := index[key]
	if set == nil {
		return
	}
	i := set.index(id)
	if i < 0 {
		return
	}
	last := len(set.ids) - 1
	moved := set.ids[last]
	set.ids[i] = moved
	set.ids[last] = ""
	set.ids = set.ids[:last]
	if set.pos != nil {
		set.pos[moved] = i
		delete(set.pos, id)
	}
	if len(set.ids) == 0 {
		delete(index, key)
	}
}

// of lists the ids under key; the caller must not change the slice, and the index must not change
// while the caller reads it.
func (index workerIndex) of(key string) []string {
	if set := index[key]; set != nil {
		return set.ids
	}
	return nil
}

func (index workerIndex) clone() workerIndex {
	out := make(workerIndex, len(index))
	for key, set := range index {
		out[key] = &idSet{ids: slices.Clone(set.ids), pos: maps.Clone(set.pos)}
	}
	return out
}

func (set *idSet) index(id string) int {
	if set.pos != nil {
		if i, ok := set.pos[id]; ok {
			return i
		}
		return -1
	}
	return slices.Index(set.ids, id)
}
