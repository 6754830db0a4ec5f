package stack_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

const (
	e2eSku  = "6fd2c87f-b296-42f0-b197-1e91e994b900"
	e2ePlan = "efb87545-963c-4e0d-99df-69c6916d9eb0"
)

// licensesPolicy attaches the SKU, without one of its plans, to the sales unit's group and gives
// workers in London the usage location GB (the others none).
const licensesPolicy = `upnDomains: [corp.example.com]
groups:
  licenses:
    unit-sales:
      - skuId: ` + e2eSku + `
        disabledPlans: [` + e2ePlan + `]
mapping:
  entra:
    usageLocation: 'worker.location == "London" ? "GB" : ""'
`

// TestLicenceThroughTheUnitGroup hires three people into Sales through hr-ingest's webhook, with a
// tenant of one prepaid unit: the unit group is given the policy's licence in the emulator
// (assignLicense), the first member's licence is active without the disabled plan, the second,
// over the prepaid count, and the third, without a usage location, are in error — and org-model's
// GetWorker shows each error on the worker's Entra account, ListGroupMembers on the group, and
// the console's worker and group pages show them in a browser.
func TestLicenceThroughTheUnitGroup(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "orgsync.yaml")
	if err := os.WriteFile(policyFile, []byte(licensesPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{StoreDir: t.TempDir(), PolicyFile: policyFile, Console: true,
		SubscribedSkus: []emulator.SubscribedSku{{SkuID: e2eSku, SkuPartNumber: "ENTERPRISEPACK", PrepaidUnits: 1, ServicePlanIDs: []string{e2ePlan}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(id string, body []byte) {
		t.Helper()
		resp, respBody, err := stack.Post(ctx, client, s.WebhookURL(), id, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook %s: %d %s", id, resp.StatusCode, respBody)
		}
	}
	conn, err := grpc.NewClient(s.OrgModel.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(s.AdminToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	api := orgsyncv1grpc.NewOrgModelServiceClient(conn)

	post("unit-sales", event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales"}))
	// One at a time, so the first holds the one prepaid unit whatever order Graph settles in.
	for _, hire := range []struct{ id, given, location string }{
		{"E3001", "Lena", "London"}, {"E3002", "Omar", "London"}, {"E3003", "Nia", "Nairobi"},
	} {
		post("msg_hire_"+hire.id, event("worker.created", map[string]any{
			"workerId": hire.id, "name": map[string]any{"givenName": hire.given, "familyName": "Licensed"},
			"jobTitle": "Account Executive", "orgUnitId": "sales", "employmentType": "employee", "location": hire.location,
			"hireDate": "2025-03-01", "startDate": "2025-03-01",
		}))
		eventually(t, func() bool {
			group, ok := s.Emulator.GroupByMailNickname("orgsync-unit-sales")
			if !ok {
				return false
			}
			account, ok := s.Emulator.UserByEmployeeID(hire.id)
			return ok && slices.Contains(s.Emulator.Members(group.ID()), account.ID())
		})
	}

	group, _ := s.Emulator.GroupByMailNickname("orgsync-unit-sales")
	if got := s.Emulator.GroupLicenses(group.ID()); !slices.Equal(got, []string{e2eSku}) {
		t.Errorf("the unit group's licences = %v, want [%s]", got, e2eSku)
	}
	if got := s.Emulator.Stats().Operations[emulator.OpGroupAssignLicense]; got != 1 {
		t.Errorf("%d assignLicense requests, want 1", got)
	}
	first, _ := s.Emulator.UserByEmployeeID("E3001")
	if states := s.Emulator.LicenseStates(first.ID()); len(states) != 1 || states[0].State != "Active" || !slices.Equal(states[0].DisabledPlans, []string{e2ePlan}) {
		t.Errorf("E3001's licence states %+v, want the SKU active without the disabled plan", states)
	}

	licenseErrors := func(workerID string) []*orgsyncv1.WorkerLicenseError {
		resp, err := api.GetWorker(ctx, &orgsyncv1.GetWorkerRequest{WorkerId: workerID})
		if err != nil {
			t.Fatal(err)
		}
		for _, account := range resp.GetAccounts() {
			if account.GetTarget() == orgsyncv1.Target_TARGET_ENTRA {
				return account.GetLicenseErrors()
			}
		}
		return nil
	}
	for workerID, want := range map[string]orgsyncv1.LicenseAssignmentError{
		"E3002": orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_COUNT_VIOLATION,
		"E3003": orgsyncv1.LicenseAssignmentError_LICENSE_ASSIGNMENT_ERROR_PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
	} {
		eventually(t, func() bool { return len(licenseErrors(workerID)) > 0 })
		got := licenseErrors(workerID)
		if len(got) != 1 || got[0].GetGroupKey() != "unit-sales" || got[0].GetSkuId() != e2eSku || got[0].GetError() != want {
			t.Errorf("%s's licence errors %v, want %v on unit-sales for %s", workerID, got, want, e2eSku)
		}
	}
	if got := licenseErrors("E3001"); len(got) != 0 {
		t.Errorf("E3001, who holds the unit, has licence errors %v", got)
	}
	members, err := api.ListGroupMembers(ctx, &orgsyncv1.ListGroupMembersRequest{Target: orgsyncv1.Target_TARGET_ENTRA, GroupKey: "unit-sales"})
	if err != nil {
		t.Fatal(err)
	}
	var inError []string
	for _, e := range members.GetLicenseErrors() {
		inError = append(inError, e.GetWorkerId())
	}
	slices.Sort(inError)
	if !slices.Equal(inError, []string{"E3002", "E3003"}) || !members.GetGroup().GetManageLicenses() || len(members.GetGroup().GetLicenses()) != 1 {
		t.Errorf("the group's members in error %v (want E3002, E3003), licences %v", inError, members.GetGroup().GetLicenses())
	}

	t.Run("console", func(t *testing.T) {
		tab := newPerson(t, newBrowser(t))
		signIn(t, tab, s, "/workers/E3003", "vera.viewer")
		if got := text(t, tab, "#license-errors tbody"); !strings.Contains(got, "unit-sales") || !strings.Contains(got, e2eSku) ||
			!strings.Contains(got, "prohibited in usage location violation") {
			t.Errorf("E3003's page, licences in error: %q", got)
		}
		if err := chromedp.Do(tab, chromedp.Navigate(s.ConsoleURL()+"/groups/entra/unit-sales"), chromedp.WaitVisible(chromedp.ID("license-errors"))); err != nil {
			t.Fatalf("the group page: %v", err)
		}
		if got := text(t, tab, "#group-licenses"); !strings.Contains(got, e2eSku) || !strings.Contains(got, e2ePlan) {
			t.Errorf("the group page's licences: %q", got)
		}
		if got := text(t, tab, "#license-errors tbody"); !strings.Contains(got, "E3002") || !strings.Contains(got, "count violation") || !strings.Contains(got, "E3003") {
			t.Errorf("the group page's members in error: %q", got)
		}
	})
}
