package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func testUser(workerID string, enabled bool) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: workerID,
		Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: workerID, AccountEnabled: enabled}}}
}

func testGroup(groupKey, name string) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: groupKey,
		Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{GroupKey: groupKey, DisplayName: name}}}
}

func testMember(groupKey, workerID string) *orgsyncv1.DesiredObject {
	return membership(orgsyncv1.Target_TARGET_ENTRA, groupKey, orgsyncv1.MemberKind_MEMBER_KIND_USER, workerID)
}

func published(obj *orgsyncv1.DesiredObject, revision uint64) *orgsyncv1.DesiredObject {
	p := Tombstone(obj)
	p.Tombstone = obj.GetTombstone()
	p.Revision = revision
	p.Cause = &orgsyncv1.Cause{Reason: "earlier"}
	return p
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name               string
		desired, published []*orgsyncv1.DesiredObject
		want               []*orgsyncv1.DesiredObject
	}{
		{
			name:    "nothing published: everything, groups and users before memberships",
			desired: []*orgsyncv1.DesiredObject{testMember("unit-a", "E1"), testUser("E1", true), testGroup("unit-a", "A")},
			want:    []*orgsyncv1.DesiredObject{testUser("E1", true), testGroup("unit-a", "A"), testMember("unit-a", "E1")},
		},
		{
			name:      "same state apart from revision and cause: no change",
			desired:   []*orgsyncv1.DesiredObject{testUser("E1", true), testMember("unit-a", "E1")},
			published: []*orgsyncv1.DesiredObject{published(testUser("E1", true), 3), published(testMember("unit-a", "E1"), 1)},
		},
		{
			name:      "changed state",
			desired:   []*orgsyncv1.DesiredObject{testUser("E1", false)},
			published: []*orgsyncv1.DesiredObject{published(testUser("E1", true), 3)},
			want:      []*orgsyncv1.DesiredObject{testUser("E1", false)},
		},
		{
			name:    "a mover: old membership removed first, new one added after the group",
			desired: []*orgsyncv1.DesiredObject{testUser("E1", true), testGroup("unit-b", "B"), testMember("unit-b", "E1")},
			published: []*orgsyncv1.DesiredObject{published(testUser("E1", true), 1), published(testGroup("unit-a", "A"), 1),
				published(testMember("unit-a", "E1"), 1)},
			want: []*orgsyncv1.DesiredObject{Tombstone(published(testMember("unit-a", "E1"), 1)), testGroup("unit-b", "B"),
				testMember("unit-b", "E1"), Tombstone(published(testGroup("unit-a", "A"), 1))},
		},
		{
			name:      "a published tombstone is not removed again",
			published: []*orgsyncv1.DesiredObject{Tombstone(testUser("E1", true))},
		},
		{
			name:      "an object desired again after its tombstone",
			desired:   []*orgsyncv1.DesiredObject{testUser("E1", true)},
			published: []*orgsyncv1.DesiredObject{Tombstone(published(testUser("E1", true), 2))},
			want:      []*orgsyncv1.DesiredObject{testUser("E1", true)},
		},
		{
			name:      "objects naming nothing are left out",
			desired:   []*orgsyncv1.DesiredObject{{Key: "nothing"}},
			published: []*orgsyncv1.DesiredObject{{Key: "nothing either"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.desired, tt.published)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSame(t *testing.T) {
	tests := []struct {
		name string
		a, b *orgsyncv1.DesiredObject
		want bool
	}{
		{"revision and cause ignored", published(testUser("E1", true), 1), published(testUser("E1", true), 7), true},
		{"state differs", testUser("E1", true), testUser("E1", false), false},
		{"two tombstones of one object", Tombstone(testUser("E1", true)), Tombstone(testUser("E1", false)), true},
		{"tombstones of two objects", Tombstone(testUser("E1", true)), Tombstone(testUser("E2", true)), false},
		{"tombstone and live", Tombstone(testUser("E1", true)), testUser("E1", true), false},
		{"user and group of one key", testUser("x", true), testGroup("x", ""), false},
		{"nil and nil", nil, nil, true},
		{"nil and an object", nil, testUser("E1", true), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Same(tt.a, tt.b); got != tt.want {
				t.Errorf("Same = %v, want %v", got, tt.want)
			}
		})
	}
}
