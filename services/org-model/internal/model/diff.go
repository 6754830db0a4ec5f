package model

import (
	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Kind is the kind of a desired directory object.
type Kind uint8

// The kinds of desired objects.
const (
	KindNone Kind = iota
	KindUser
	KindGroup
	KindMember
)

// Ref names one desired directory object: its target, its kind and its key — the worker id of a
// user, the group key of a group, the group key and the member key of a membership. It is a
// plain comparable value; subjects and paths are made from it at the edge (pkg/subject).
type Ref struct {
	Target orgsyncv1.Target
	Kind   Kind
	// Key is the worker id of a user and the group key of a group or a membership.
	Key string
	// Member is the member key of a membership, empty otherwise.
	Member string
}

// UserRef is the reference of a worker's user in target.
func UserRef(target orgsyncv1.Target, workerID string) Ref {
	return Ref{Target: target, Kind: KindUser, Key: workerID}
}

// GroupRef is the reference of a group in target.
func GroupRef(target orgsyncv1.Target, groupKey string) Ref {
	return Ref{Target: target, Kind: KindGroup, Key: groupKey}
}

// MemberRef is the reference of a membership in target.
func MemberRef(target orgsyncv1.Target, groupKey, memberKey string) Ref {
	return Ref{Target: target, Kind: KindMember, Key: groupKey, Member: memberKey}
}

// RefOf is the reference of a desired object; its Kind is KindNone when obj names no object.
func RefOf(obj *orgsyncv1.DesiredObject) Ref {
	switch o := obj.GetObject().(type) {
	case *orgsyncv1.DesiredObject_User:
		return UserRef(obj.GetTarget(), o.User.GetWorkerId())
	case *orgsyncv1.DesiredObject_Group:
		return GroupRef(obj.GetTarget(), o.Group.GetGroupKey())
	case *orgsyncv1.DesiredObject_Membership:
		return MemberRef(obj.GetTarget(), o.Membership.GetGroupKey(), o.Membership.GetMemberKey())
	default:
		return Ref{Target: obj.GetTarget()}
	}
}

// Same says whether two desired states are the same apart from revision and cause: two
// tombstones of one object are the same whatever else they carry.
func Same(a, b *orgsyncv1.DesiredObject) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.GetTombstone() != b.GetTombstone() || a.GetTarget() != b.GetTarget() {
		return false
	}
	if a.GetTombstone() {
		return RefOf(a) == RefOf(b)
	}
	if a.GetKey() != b.GetKey() {
		return false
	}
	switch {
	case a.GetUser() != nil:
		return proto.Equal(a.GetUser(), b.GetUser())
	case a.GetGroup() != nil:
		return proto.Equal(a.GetGroup(), b.GetGroup())
	case a.GetMembership() != nil:
		return proto.Equal(a.GetMembership(), b.GetMembership())
	}
	return b.GetObject() == nil
}

// Tombstone is a tombstone of obj: the same object, marked as no longer desired.
func Tombstone(obj *orgsyncv1.DesiredObject) *orgsyncv1.DesiredObject {
	tombstone := proto.CloneOf(obj)
	tombstone.Tombstone = true
	return tombstone
}

// Diff returns the changes that turn published into desired: every desired object that is not
// published in the same state, and a tombstone for every published object (not itself a
// tombstone) that desired lacks. The changes are ordered so that a writer always finds both ends
// of a membership: removed memberships first, then created or changed users and groups, then
// created or changed memberships, then removed users and groups; within each, in the order of
// desired, and of published for tombstones. Objects that name nothing are left out. Incremental
// apply, the reconcile at start and plans all use it.
func Diff(desired, published []*orgsyncv1.DesiredObject) []*orgsyncv1.DesiredObject {
	refs := make([]Ref, len(desired))
	for i, obj := range desired {
		refs[i] = RefOf(obj)
	}
	changes, _ := diff(desired, refs, published)
	return changes
}

// diff is Diff with the references of desired already made; it returns the changes' references
// too.
func diff(desired []*orgsyncv1.DesiredObject, desiredRefs []Ref, published []*orgsyncv1.DesiredObject) ([]*orgsyncv1.DesiredObject, []Ref) {
	before := make(map[Ref]*orgsyncv1.DesiredObject, len(published))
	for _, obj := range published {
		if ref := RefOf(obj); ref.Kind != KindNone && !obj.GetTombstone() {
			before[ref] = obj
		}
	}
	// Desired objects are marked as they are compared and listed by their mark afterwards, so
	// that the changes are made once at their size: a full recompute has 260,000 of them.
	const (
		unchanged = iota
		upserted
		addedMember
	)
	marks := make([]uint8, len(desired))
	var upserts, addedMembers int
	var wanted map[Ref]struct{}
	if len(before) > 0 {
		wanted = make(map[Ref]struct{}, len(desired))
	}
	for i, obj := range desired {
		ref := desiredRefs[i]
		if ref.Kind == KindNone {
			continue
		}
		if wanted != nil {
			wanted[ref] = struct{}{}
		}
		if previous, ok := before[ref]; ok && Same(previous, obj) {
			continue
		}
		if ref.Kind == KindMember {
			marks[i] = addedMember
			addedMembers++
		} else {
			marks[i] = upserted
			upserts++
		}
	}
	var removedMembers, removedObjects []refObject
	for _, obj := range published {
		ref := RefOf(obj)
		if before[ref] != obj {
			continue // names nothing, a tombstone, or a second copy
		}
		if _, ok := wanted[ref]; ok {
			continue
		}
		if ref.Kind == KindMember {
			removedMembers = append(removedMembers, refObject{ref: ref, obj: Tombstone(obj)})
		} else {
			removedObjects = append(removedObjects, refObject{ref: ref, obj: Tombstone(obj)})
		}
	}
	n := len(removedMembers) + upserts + addedMembers + len(removedObjects)
	changes, refs := make([]*orgsyncv1.DesiredObject, 0, n), make([]Ref, 0, n)
	for _, ro := range removedMembers {
		changes, refs = append(changes, ro.obj), append(refs, ro.ref)
	}
	for _, mark := range []uint8{upserted, addedMember} {
		for i, obj := range desired {
			if marks[i] == mark {
				changes, refs = append(changes, obj), append(refs, desiredRefs[i])
			}
		}
	}
	for _, ro := range removedObjects {
		changes, refs = append(changes, ro.obj), append(refs, ro.ref)
	}
	return changes, refs
}
