package model

import (
	"testing"

	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestObjectsCountAndLookUpEveryKind: users, groups and memberships (kept in their groups, not by
// reference) are all found by Object, listed by Objects and counted by Counts, after a
// computation and after changes that add and remove memberships.
func TestObjectsCountAndLookUpEveryKind(t *testing.T) {
	m, now := newGroupsCompany(t)
	check := func(step string) {
		t.Helper()
		all := m.Objects()
		if got := m.Counts().Objects; got != len(all) {
			t.Errorf("%s: Counts().Objects = %d, Objects() lists %d", step, got, len(all))
		}
		kinds := map[Kind]int{}
		for _, obj := range all {
			ref := RefOf(obj)
			if ref.Kind == KindNone {
				t.Fatalf("%s: Objects() lists %v, which names no object", step, obj)
			}
			kinds[ref.Kind]++
			// A membership is stored as its member kind and made anew when read: equal, not the
			// same message.
			if got := m.Object(ref); !proto.Equal(got, obj) {
				t.Errorf("%s: Object(%v) = %v, want the listed object", step, ref, got)
			}
		}
		if kinds[KindUser] == 0 || kinds[KindGroup] == 0 || kinds[KindMember] == 0 {
			t.Errorf("%s: objects by kind %v: every kind should be there", step, kinds)
		}
	}
	check("computed")
	if m.Object(MemberRef(orgsyncv1.Target_TARGET_ENTRA, "unit-sales", "E2")) == nil {
		t.Fatal("Jane's membership of unit-sales is not found")
	}

	// Jane moves to marketing: one membership goes, one comes.
	m.Apply(workerEvent(now, person("E2", "Jane", "Doe", "marketing", managedBy("E1"))), now)
	check("after a move")
	if m.Object(MemberRef(orgsyncv1.Target_TARGET_ENTRA, "unit-sales", "E2")) != nil {
		t.Error("Jane's old membership of unit-sales is still there")
	}
	if m.Object(MemberRef(orgsyncv1.Target_TARGET_ENTRA, "unit-marketing", "E2")) == nil {
		t.Error("Jane's new membership of unit-marketing is not there")
	}

	// A removed unit takes its groups and their memberships.
	m.Apply(&orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_OrgUnit{OrgUnit: &orgsyncv1.OrgUnit{
		OrgUnitId: "sales", Name: "Sales", ParentOrgUnitId: "commercial", Deleted: true}}}, now)
	check("after a unit's removal")
	if m.Object(MemberRef(orgsyncv1.Target_TARGET_ENTRA, "all-sales", "unit-sales")) != nil {
		t.Error("the removed unit's roll-up membership is still there")
	}
	if c := m.Clone(); c.Counts() != m.Counts() {
		t.Errorf("a clone counts %+v, the model %+v", c.Counts(), m.Counts())
	}
}
