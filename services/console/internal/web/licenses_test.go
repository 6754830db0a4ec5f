package web

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestPagesShowLicenceErrors: the worker page lists the worker's licences in error (group, SKU,
// error) and the group page its licences and members in error; without any, each says so.
func TestPagesShowLicenceErrors(t *testing.T) {
	tmpl, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	const sku, plan = "6fd2c87f-b296-42f0-b197-1e91e994b900", "efb87545-963c-4e0d-99df-69c6916d9eb0"
	seen := timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	countViolation := orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION
	licensed := &orgsyncv1.DesiredGroup{GroupKey: "unit-sales", ManageLicenses: true, Licenses: []*orgsyncv1.GroupLicense{{SkuId: sku, DisabledPlanIds: []string{plan}}}}
	tests := []struct {
		name, page string
		data       map[string]any
		want, not  []string
	}{
		{
			name: "worker in error", page: "worker",
			data: map[string]any{"LicenseErrors": true, "W": &orgsyncv1.GetWorkerResponse{Worker: &orgsyncv1.Worker{WorkerId: "E1"}, Accounts: []*orgsyncv1.WorkerAccount{{
				Target: orgsyncv1.Target_TARGET_ENTRA, LicenseErrors: []*orgsyncv1.WorkerLicenseError{{GroupKey: "unit-sales", SkuId: sku, Error: countViolation, ObservedAt: seen}},
			}}}},
			want: []string{`<tr class="license-error"><td>entra</td><td><a href="/groups/entra/unit-sales">unit-sales</a></td>`, sku, "count violation"},
			not:  []string{`id="no-license-errors"`},
		},
		{
			name: "worker without errors", page: "worker",
			data: map[string]any{"W": &orgsyncv1.GetWorkerResponse{Worker: &orgsyncv1.Worker{WorkerId: "E2"}, Accounts: []*orgsyncv1.WorkerAccount{{Target: orgsyncv1.Target_TARGET_ENTRA}}}},
			want: []string{`id="no-license-errors"`},
			not:  []string{`class="license-error"`},
		},
		{
			name: "licensed group with members in error", page: "group",
			data: map[string]any{"Target": "entra", "Key": "unit-sales", "Group": licensed, "LicenseErrorsAt": seen, "LicenseErrors": []*orgsyncv1.MemberLicenseError{
				{WorkerId: "E1", MemberObjectId: "obj-1", SkuId: sku, Error: orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION},
				{MemberObjectId: "obj-foreign", SkuId: sku, Error: countViolation},
			}},
			want: []string{`id="group-licenses"><span class="mono">` + sku + `</span> (without <span class="mono">` + plan + `</span>)`,
				`<a href="/workers/E1">E1</a>`, "prohibited in usage location violation", "obj-foreign", "not managed by orgsync</td>", "count violation"},
		},
		{
			name: "group with every licence removed", page: "group",
			data: map[string]any{"Target": "entra", "Key": "rule-contractors", "Group": &orgsyncv1.DesiredGroup{ManageLicenses: true}},
			want: []string{"none: orgsync removes every licence from the group"},
			not:  []string{`id="license-errors"`},
		},
		{
			name: "group without licences", page: "group",
			data: map[string]any{"Target": "entra", "Key": "unit-it", "Group": &orgsyncv1.DesiredGroup{}},
			want: []string{`id="group-licenses">not managed by orgsync</dd>`},
			not:  []string{`id="license-errors"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who := person{Principal: auth.Principal{Subject: "s", Roles: []auth.Role{auth.Roles[0]}}, csrf: "token"}
			var page strings.Builder
			if err := tmpl.byName[tt.page].ExecuteTemplate(&page, "layout.html", view{Title: tt.page, Person: who, SignedIn: true, CSRF: who.csrf, Data: tt.data}); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(page.String(), want) {
					t.Errorf("the page has no %q", want)
				}
			}
			for _, not := range tt.not {
				if strings.Contains(page.String(), not) {
					t.Errorf("the page has %q", not)
				}
			}
		})
	}
}
