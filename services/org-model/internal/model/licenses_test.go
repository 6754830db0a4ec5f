package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

const testSku = "6fd2c87f-b296-42f0-b197-1e91e994b900"

func TestPolicyLicencesGoOnTheEntraGroup(t *testing.T) {
	pol := mustPolicy(t, `groups:
  rollup: {enabled: true}
  licenses:
    unit-sales:
      - skuId: 6FD2C87F-B296-42F0-B197-1E91E994B900
        disabledPlans: [efb87545-963c-4e0d-99df-69c6916d9eb0]
    all-sales: []
`)
	m := New(pol, entra, orgsyncv1.Target_TARGET_AD)
	now := at("2026-03-01T09:00:00Z")
	m.Apply(unitEvent("sales", "Sales", "", ""), now)
	m.Apply(unitEvent("finance", "Finance", "", ""), now)

	group := func(target orgsyncv1.Target, key string) *orgsyncv1.DesiredGroup {
		t.Helper()
		g := m.Object(GroupRef(target, key)).GetGroup()
		if g == nil {
			t.Fatalf("no desired group %s in %v", key, target)
		}
		return g
	}
	want := &orgsyncv1.DesiredGroup{ManageLicenses: true, Licenses: []*orgsyncv1.GroupLicense{{SkuId: testSku, DisabledPlanIds: []string{"efb87545-963c-4e0d-99df-69c6916d9eb0"}}}}
	got := group(entra, "unit-sales")
	if diff := cmp.Diff(want, &orgsyncv1.DesiredGroup{ManageLicenses: got.GetManageLicenses(), Licenses: got.GetLicenses()}, protocmp.Transform()); diff != "" {
		t.Errorf("unit-sales in entra (-want +got):\n%s", diff)
	}
	if g := group(entra, "all-sales"); !g.GetManageLicenses() || len(g.GetLicenses()) != 0 {
		t.Errorf("all-sales, listed with no licence: manage %v, licences %v; want managed with none", g.GetManageLicenses(), g.GetLicenses())
	}
	if g := group(entra, "unit-finance"); g.GetManageLicenses() {
		t.Errorf("unit-finance, not in groups.licenses, is managed: %v", g)
	}
	if g := group(orgsyncv1.Target_TARGET_AD, "unit-sales"); g.GetManageLicenses() || len(g.GetLicenses()) != 0 {
		t.Errorf("AD has no licences, but unit-sales in ad carries %v", g.GetLicenses())
	}
}
