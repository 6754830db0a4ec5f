package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
)

// chromiumPath is Debian's chromium, which scripts/install-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where TestConsoleInBrowser saves a screenshot of each page (default: the
// test's temporary directory). docs/console is refreshed with
//
//	go test ./deploy/local/stack -run TestConsoleInBrowser -console-screenshots=$PWD/docs/console
var screenshotDir = flag.String("console-screenshots", "", "directory for the console's page screenshots")

// consolePolicy holds the first disable or removal within an hour (more than 1% of the accounts),
// and the guard adds the next ones to the batch it holds, so that three leavers make one batch.
const consolePolicy = `upnDomains: [corp.example.com]
guard:
  maxChanges: 500
  maxShare: 1%
  minChangesForShare: 1
  window: 1h
`

// consoleStack is the stack the browser tests share: the sample company loaded and written to
// the emulator, the console and its dev issuer running.
type consoleStack struct {
	s   *stack.Stack
	api orgsyncv1grpc.OrgModelServiceClient
}

func startConsoleStack(t *testing.T) consoleStack {
	t.Helper()
	policyFile := filepath.Join(t.TempDir(), "orgsync.yaml")
	if err := os.WriteFile(policyFile, []byte(consolePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{
		StoreDir: t.TempDir(), PolicyFile: policyFile, Console: true,
		Sources:  []hringest.SourceConfig{{Name: scimSource, Kind: hringest.KindSCIM, Tokens: []string{scimToken}}},
		TraceURL: "https://traces.example.test/trace/{traceId}",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	conn, err := grpc.NewClient(s.OrgModel.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(s.AdminToken)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	loadSample(t, s)
	eventually(t, func() bool {
		_, ok := s.Emulator.UserByEmployeeID("E1302")
		return ok && len(groupMembers(s, "Org - Engineering")) == 3
	})
	return consoleStack{s: s, api: orgsyncv1grpc.NewOrgModelServiceClient(conn)}
}

// loadSample posts deploy/local/sample/company.json, as make run does.
func loadSample(t *testing.T, s *stack.Stack) {
	t.Helper()
	data, err := os.ReadFile("../sample/company.json")
	if err != nil {
		t.Fatal(err)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		resp, body, err := stack.Post(t.Context(), http.DefaultClient, s.WebhookURL(), fmt.Sprintf("console-sample-%d", i), e)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("sample event %d: %s %s", i, resp.Status, body)
		}
	}
}

// newBrowser starts one headless chromium for the test, with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s: %v (scripts/install-deps.sh installs Debian's chromium)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return browserCtx
}

// newPerson opens a tab in a browser context of its own (its own cookies), bounded in time.
func newPerson(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	tab, cancelTimeout := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab() })
	return tab
}

// signIn goes to path on the console, is sent to the dev issuer, chooses subject there, and
// lands back on path.
func signIn(t *testing.T, tab context.Context, s *stack.Stack, path, subject string) {
	t.Helper()
	if err := chromedp.Do(tab,
		chromedp.Navigate(s.ConsoleURL()+path),
		chromedp.WaitVisible(loginButton(subject)),
	); err != nil {
		t.Fatalf("signing in as %s: %v", subject, err)
	}
	follow(t, tab, loginButton(subject), func(location string) bool { return location == s.ConsoleURL()+path })
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("signing in as %s: %v", subject, err)
	}
	location, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if want := s.ConsoleURL() + path; location != want {
		t.Fatalf("after signing in at %s, want %s", location, want)
	}
}

// follow clicks what navigates to another page and waits until the browser is at a location
// arrived accepts and the page has loaded: querying nodes while one document replaces another
// fails ("Could not find node with given id").
func follow(t *testing.T, tab context.Context, what chromedp.CSS, arrived func(location string) bool) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Click(what)); err != nil {
		t.Fatalf("clicking %s: %v", what, err)
	}
	location := ""
	for range 200 {
		var err error
		location, err = chromedp.Run(tab, chromedp.Location())
		if err == nil && arrived(location) {
			if state, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.readyState`)); err == nil && state == "complete" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after clicking %s the browser is at %s", what, location)
}

// loginButton is the dev issuer's button that signs subject in.
func loginButton(subject string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`button[id=%q]`, "login-"+subject))
}

func text(t *testing.T, tab context.Context, selector string) string {
	t.Helper()
	got, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("text of %s: %v", selector, err)
	}
	return got
}

// submitPlan posts the plan form and waits for the result (the answer is the same /plan path, so
// it waits for the result section of the new page).
func submitPlan(t *testing.T, tab context.Context) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.title = "submitted"; document.getElementById("plan-submit").click(); "sent"`)); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		// The new page's title is "Plan · orgsync" again, with the result in it.
		title, err := chromedp.Run(tab, chromedp.Title())
		if err == nil && title != "submitted" {
			if state, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.readyState`)); err == nil && state == "complete" {
				if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("plan-result"))); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the plan page did not answer")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writePNG(t *testing.T, path string, png []byte) {
	t.Helper()
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("%s: not a PNG (%d bytes)", path, len(png))
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectedPlan asks hr-ingest's dry run and org-model's Plan directly, with the admin token, and
// returns "action path" per change, sorted.
func expectedPlan(t *testing.T, cs consoleStack, source string, payload []byte) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+cs.s.HRIngest.HTTPAddr()+"/v1/dry-run/"+source, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cs.s.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dry run: %s %s", resp.Status, body)
	}
	var plan orgsyncv1.PlanRequest
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &plan); err != nil {
		t.Fatal(err)
	}
	answer, err := cs.api.Plan(t.Context(), &plan)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, change := range answer.GetChanges() {
		action := strings.ToLower(strings.TrimPrefix(change.GetAction().String(), "CHANGE_ACTION_"))
		rows = append(rows, action+" "+change.GetPath())
	}
	slices.Sort(rows)
	return rows
}

// leaveEngineering makes the three engineers leave; the guard holds the batch.
func leaveEngineering(t *testing.T, cs consoleStack) *orgsyncv1.PendingBatch {
	t.Helper()
	for _, id := range []string{"E1300", "E1301", "E1302"} {
		body := event("worker.updated", map[string]any{
			"workerId": id, "name": map[string]any{"givenName": "Leaver", "familyName": id},
			"jobTitle": "Engineer", "orgUnitId": "engineering", "employmentType": "employee",
			"employmentStatus": "terminated", "hireDate": "2024-01-15", "startDate": "2024-01-15", "endDate": "2026-03-01",
		})
		resp, answer, err := stack.Post(t.Context(), http.DefaultClient, cs.s.WebhookURL(), "console-leave-"+id, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("leaver %s: %s %s", id, resp.Status, answer)
		}
	}
	var batch *orgsyncv1.PendingBatch
	eventually(t, func() bool {
		pending, err := cs.api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
		if err != nil || len(pending.GetBatches()) != 1 {
			return false
		}
		batch = pending.GetBatches()[0]
		return true
	})
	return batch
}

// TestConsoleInBrowser drives the console in headless chromium against the whole stack: one
// browser, one person per browser context.
func TestConsoleInBrowser(t *testing.T) {
	cs := startConsoleStack(t)
	s := cs.s
	browser := newBrowser(t)

	t.Run("an unauthenticated visitor is sent to sign in", func(t *testing.T) {
		tab := newPerson(t, browser)
		if err := chromedp.Do(tab,
			chromedp.Navigate(s.ConsoleURL()+"/workers/E1101"),
			chromedp.WaitVisible(loginButton("vera.viewer")),
		); err != nil {
			t.Fatal(err)
		}
		location, err := chromedp.Run(tab, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		issuer, _ := url.Parse(s.Issuer.URL())
		got, err := url.Parse(location)
		if err != nil {
			t.Fatal(err)
		}
		if got.Host != issuer.Host || got.Path != "/authorize" || got.Query().Get("code_challenge_method") != "S256" {
			t.Errorf("sent to %s, want the issuer's /authorize with a PKCE challenge", location)
		}
		// Without a session, a page's content is never served, not even to a client that does not
		// follow the redirect.
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(s.ConsoleURL() + "/workers/E1101")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("GET without a session = %s to %q, want 303 to /login", resp.Status, resp.Header.Get("Location"))
		}
	})

	t.Run("a viewer browses the tree, opens a worker and sees why they are in a group", func(t *testing.T) {
		tab := newPerson(t, browser)
		signIn(t, tab, s, "/org", "vera.viewer")
		tree := text(t, tab, "#org-tree")
		for _, unit := range []string{"Example Ltd", "Commercial", "Engineering", "Finance"} {
			if !strings.Contains(tree, unit) {
				t.Errorf("tree does not show %s:\n%s", unit, tree)
			}
		}
		// Open Commercial (collapsed) with the keyboard, then Sales, then a person in it.
		if err := chromedp.Do(tab,
			chromedp.Focus(chromedp.CSS(`details[data-search^="Commercial"] > summary`)),
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS(`a[href="/units/sales"]`)),
		); err != nil {
			t.Fatal(err)
		}
		follow(t, tab, chromedp.CSS(`a[href="/units/sales"]`), func(location string) bool { return strings.HasSuffix(location, "/units/sales") })
		follow(t, tab, chromedp.CSS(`a[href="/workers/E1101"]`), func(location string) bool { return strings.HasSuffix(location, "/workers/E1101") })
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("groups"))); err != nil {
			t.Fatal(err)
		}
		explained, err := cs.api.ExplainMembership(t.Context(), &orgsyncv1.ExplainMembershipRequest{
			Target: orgsyncv1.Target_TARGET_ENTRA, GroupKey: "unit-sales", WorkerId: "E1101"})
		if err != nil {
			t.Fatal(err)
		}
		if explained.GetReason() == "" {
			t.Fatal("org-model gives no reason for E1101 in unit-sales")
		}
		row, err := chromedp.Run(tab, chromedp.Text(chromedp.Search(`//section[@aria-labelledby="groups"]//tr[td/a[text()="unit-sales"]]`)))
		if err != nil {
			t.Fatalf("the worker page has no row for unit-sales: %v", err)
		}
		if !strings.Contains(row, explained.GetReason()) {
			t.Errorf("unit-sales row %q does not give the reason %q", row, explained.GetReason())
		}
	})

	t.Run("an operator delegates and asks for temporary access, an approver approves", func(t *testing.T) {
		operator := newPerson(t, browser)
		signIn(t, operator, s, "/workers/E1101", "oscar.operator")
		today := time.Now().UTC()
		if err := chromedp.Do(operator,
			chromedp.SetValue(chromedp.CSS(`#from`), "E1110"),
			chromedp.SetValue(chromedp.CSS(`#start`), today.AddDate(0, 0, -1).Format("2006-01-02")),
			chromedp.SetValue(chromedp.CSS(`#end`), today.AddDate(0, 0, 7).Format("2006-01-02")),
			chromedp.SetValue(chromedp.CSS(`#delegation-reason`), "covering E1110"),
		); err != nil {
			t.Fatal(err)
		}
		follow(t, operator, chromedp.CSS(`#delegate`), func(location string) bool { return strings.Contains(location, "/workers/E1101?done=") })
		if notice := text(t, operator, "#notice"); !strings.Contains(notice, "created") {
			t.Errorf("notice after delegating: %q", notice)
		}
		if row := text(t, operator, "#delegations tbody"); !strings.Contains(row, "E1110") || !strings.Contains(row, "active") || !strings.Contains(row, "oscar.operator") {
			t.Errorf("delegations on the worker page: %q", row)
		}
		eventually(t, func() bool {
			explained, err := cs.api.ExplainMembership(t.Context(), &orgsyncv1.ExplainMembershipRequest{GroupKey: "unit-marketing", WorkerId: "E1101"})
			return err == nil && explained.GetReasonKind() == orgsyncv1.MembershipReason_MEMBERSHIP_REASON_DELEGATION
		})

		if err := chromedp.Do(operator,
			chromedp.SetValue(chromedp.CSS(`#group`), "unit-finance"),
			chromedp.SetValue(chromedp.CSS(`#until`), today.AddDate(0, 0, 3).Format("2006-01-02")),
			chromedp.SetValue(chromedp.CSS(`#request-reason`), "INC-1 month-end"),
		); err != nil {
			t.Fatal(err)
		}
		// The page is already at ?done= (the delegation's notice): wait for the request's.
		follow(t, operator, chromedp.CSS(`#request-access`), func(location string) bool { return strings.Contains(location, "/workers/E1101?done=request") })
		requests, err := cs.api.ListAccessRequests(t.Context(), &orgsyncv1.ListAccessRequestsRequest{})
		if err != nil || len(requests.GetRequests()) != 1 {
			t.Fatalf("requests: %v, %v", requests, err)
		}
		requestID := requests.GetRequests()[0].GetRequestId()

		approver := newPerson(t, browser)
		signIn(t, approver, s, "/approvals", "alex.approver")
		follow(t, approver, chromedp.CSS(`#approve-request-`+requestID), func(location string) bool { return strings.Contains(location, "/approvals?done=") })
		if notice := text(t, approver, "#notice"); !strings.Contains(notice, "request "+requestID+" approved") {
			t.Errorf("notice after approving: %q", notice)
		}
		eventually(t, func() bool { return slices.Contains(groupMembers(s, "Org - Finance"), "E1101") })

		// A credential is asked for on the same page and decided on the same approvals page.
		if err := chromedp.Do(operator,
			chromedp.SetValue(chromedp.CSS(`#credential-kind`), "tap"),
			chromedp.SetValue(chromedp.CSS(`#lifetime`), "120"),
			chromedp.SetValue(chromedp.CSS(`#credential-reason`), "INC-2 lost phone"),
		); err != nil {
			t.Fatal(err)
		}
		follow(t, operator, chromedp.CSS(`#request-credential`), func(location string) bool {
			return strings.Contains(location, "/workers/E1101?done=request") && !strings.Contains(location, requestID)
		})
		requests, err = cs.api.ListAccessRequests(t.Context(), &orgsyncv1.ListAccessRequestsRequest{})
		if err != nil || len(requests.GetRequests()) != 2 {
			t.Fatalf("requests: %v, %v", requests, err)
		}
		pass := requests.GetRequests()[0] // newest first
		if pass.GetKind() != orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS || pass.GetLifetimeMinutes() != 120 || pass.GetReason() != "INC-2 lost phone" {
			t.Errorf("the credential request from the form: %v", pass)
		}
		if err := chromedp.Do(approver, chromedp.Navigate(s.ConsoleURL()+"/approvals"), chromedp.WaitVisible(chromedp.CSS("#request-"+pass.GetRequestId()))); err != nil {
			t.Fatal(err)
		}
		if row := text(t, approver, "#request-"+pass.GetRequestId()); !strings.Contains(row, "Temporary Access Pass (120 min, one sign-in)") {
			t.Errorf("the approvals page's row of the pass request: %q", row)
		}
		follow(t, approver, chromedp.CSS(`#approve-request-`+pass.GetRequestId()), func(location string) bool { return strings.Contains(location, "/approvals?done=") })
		if notice := text(t, approver, "#notice"); !strings.Contains(notice, "request "+pass.GetRequestId()+" approved") {
			t.Errorf("notice after approving the pass: %q", notice)
		}
	})

	batch := leaveEngineering(t, cs)

	t.Run("a screenshot of each page", func(t *testing.T) {
		dir := *screenshotDir
		if dir == "" {
			dir = t.TempDir()
		}
		tab := newPerson(t, browser)
		signIn(t, tab, s, "/org", "ada.admin")
		pages := []struct{ file, path, ready string }{
			{"organisation.png", "/org?q=Sales", "#org-tree"},
			{"worker.png", "/workers/E1101", "#audit"},
			{"group.png", "/groups/entra/unit-sales", "table"},
			{"approvals.png", "/approvals", "#batch-" + batch.GetBatchId()},
			{"health.png", "/health", "#services"},
		}
		for _, page := range pages {
			if err := chromedp.Do(tab,
				chromedp.Navigate(s.ConsoleURL()+page.path),
				chromedp.WaitVisible(chromedp.CSS(page.ready)),
			); err != nil {
				t.Fatalf("%s: %v", page.path, err)
			}
			png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("%s: %v", page.path, err)
			}
			writePNG(t, filepath.Join(dir, page.file), png)
		}
		// The plan page with a plan: Jane's hire, as orgsync JSON events.
		if err := chromedp.Do(tab,
			chromedp.Navigate(s.ConsoleURL()+"/plan"),
			chromedp.SetValue(chromedp.ID("kind"), "local"),
			chromedp.SetValue(chromedp.ID("payload"), string(mustRead(t, "../sample/hire-jane.json"))),
		); err != nil {
			t.Fatalf("plan: %v", err)
		}
		submitPlan(t, tab)
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		writePNG(t, filepath.Join(dir, "plan.png"), png)
	})

	t.Run("a plan of a SCIM payload shows the exact changes", func(t *testing.T) {
		payload := bulkRequest(scimUser("701001", "Zoe", "Quinn", "Example Ltd", "Commercial", "Sales"))
		tab := newPerson(t, browser)
		signIn(t, tab, s, "/plan", "vera.viewer")
		if err := chromedp.Do(tab,
			chromedp.SetValue(chromedp.ID("kind"), scimSource),
			chromedp.SetValue(chromedp.ID("payload"), string(payload)),
		); err != nil {
			t.Fatal(err)
		}
		submitPlan(t, tab)
		rows, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#plan-result tbody tr")).map(tr => tr.cells[0].innerText.trim() + " " + tr.cells[1].innerText.trim())`))
		if err != nil {
			t.Fatal(err)
		}
		// What the page shows is exactly what hr-ingest's dry run and org-model's Plan answer.
		want := expectedPlan(t, cs, scimSource, payload)
		slices.Sort(rows)
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("planned changes on the page (-want +got):\n%s", diff)
		}
		if !slices.Contains(rows, "create entra.user.701001") {
			t.Errorf("the plan does not create Zoe's account: %v", rows)
		}
		page := text(t, tab, "#plan-result")
		for _, field := range []string{"displayName: — → Zoe Quinn", "employeeId: — → 701001"} {
			if !strings.Contains(page, field) {
				t.Errorf("the plan does not show %q:\n%s", field, page)
			}
		}
		// Nothing was sent: the worker is unknown to org-model.
		if _, err := cs.api.GetWorker(t.Context(), &orgsyncv1.GetWorkerRequest{WorkerId: "701001"}); err == nil {
			t.Error("planning published the worker")
		}
	})

	t.Run("a viewer cannot approve", func(t *testing.T) {
		tab := newPerson(t, browser)
		signIn(t, tab, s, "/approvals", "vera.viewer")
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("batch-"+batch.GetBatchId()))); err != nil {
			t.Fatal(err)
		}
		buttons, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("button.approve, button.reject").length`))
		if err != nil {
			t.Fatal(err)
		}
		if buttons != 0 {
			t.Errorf("a viewer sees %d approve/reject buttons", buttons)
		}
		// A forged POST from the viewer's own session, with their valid CSRF token (from the
		// sign-out form), is refused for want of the role.
		forge := fmt.Sprintf(`(async () => {
			const body = new URLSearchParams({csrf: document.querySelector('form.who input[name=csrf]').value});
			const resp = await fetch('/approvals/%s/approve', {method: 'POST', body});
			return resp.status;
		})()`, batch.GetBatchId())
		status, err := chromedp.Run(tab, chromedp.Evaluate[int](forge, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusForbidden {
			t.Errorf("forged approval = %d, want 403", status)
		}
		pending, err := cs.api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pending.GetBatches()) != 1 {
			t.Errorf("after the forged approval %d batches are held, want the 1 still held", len(pending.GetBatches()))
		}
	})

	t.Run("an approver approves a held batch: published, applied and audited with their name", func(t *testing.T) {
		tab := newPerson(t, browser)
		signIn(t, tab, s, "/approvals", "alex.approver")
		follow(t, tab, chromedp.CSS("#approve-"+batch.GetBatchId()), func(location string) bool { return strings.Contains(location, "/approvals?done=") })
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.ID("notice"))); err != nil {
			t.Fatal(err)
		}
		if notice := text(t, tab, "#notice"); !strings.Contains(notice, "approved "+batch.GetBatchId()) {
			t.Errorf("notice %q", notice)
		}
		if by := text(t, tab, "#decided .decided-by"); by != "alex.approver" {
			t.Errorf("decided by %q on the page, want alex.approver", by)
		}
		pending, err := cs.api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pending.GetBatches()) != 0 || len(pending.GetDecided()) == 0 || pending.GetDecided()[0].GetDecidedBy().GetSubject() != "alex.approver" {
			t.Fatalf("after approval: held %d, decided %v", len(pending.GetBatches()), pending.GetDecided())
		}
		// Published and applied: the leavers are disabled in the emulator.
		eventually(t, func() bool {
			user, ok := s.Emulator.UserByEmployeeID("E1300")
			return ok && user["accountEnabled"] == false
		})
		// Audited with the approver's name, and shown on the worker's page.
		eventually(t, func() bool {
			audit, err := cs.api.ListAudit(t.Context(), &orgsyncv1.ListAuditRequest{WorkerId: "E1300"})
			if err != nil {
				return false
			}
			for _, record := range audit.GetRecords() {
				if record.GetApprovedBy().GetSubject() == "alex.approver" && record.GetApprovalBatchId() == batch.GetBatchId() {
					return true
				}
			}
			return false
		})
		if err := chromedp.Do(tab, chromedp.Navigate(s.ConsoleURL()+"/workers/E1300"), chromedp.WaitVisible(chromedp.ID("audit"))); err != nil {
			t.Fatal(err)
		}
		if audit := text(t, tab, `section[aria-labelledby="audit"] tbody`); !strings.Contains(audit, "alex.approver") {
			t.Errorf("the worker's audit trail does not name the approver:\n%s", audit)
		}
	})
}
