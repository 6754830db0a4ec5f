package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestPagesRenderSparseAnswers renders every page with answers whose optional messages are all
// missing (no writer result yet, no cause, no decision): a template must never stop half-way on
// a nil message.
func TestPagesRenderSparseAnswers(t *testing.T) {
	tmpl, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	batch := &orgsyncv1.PendingBatch{BatchId: "b-1", Objects: []*orgsyncv1.DesiredObject{{Key: "E1", Tombstone: true}, {}}}
	tests := []struct {
		page string
		data any
	}{
		{"org", map[string]any{"Roots": []*treeNode{{ID: "u", Children: []*treeNode{{ID: "c"}}}}, "Workers": []*orgsyncv1.WorkerSummary{{}}}},
		{"unit", map[string]any{"Unit": &orgsyncv1.GetOrgUnitResponse{}, "Workers": []*orgsyncv1.WorkerSummary{{}}}},
		{"workers", map[string]any{"Workers": []*orgsyncv1.WorkerSummary{{}}}},
		{"worker", map[string]any{
			"W":        &orgsyncv1.GetWorkerResponse{Worker: &orgsyncv1.Worker{}, Accounts: []*orgsyncv1.WorkerAccount{{}}},
			"Timeline": []timelineEntry{{When: time.Now(), What: "hired"}},
			"Groups":   []membership{{Key: "g"}},
			"Audit":    []*orgsyncv1.AuditRecord{{}},
			"Access":   accessView{Delegations: []*orgsyncv1.Delegation{{}, {FromOrgUnitId: "u"}}, Requests: []*orgsyncv1.AccessRequest{{}}},
			"Notice":   "done",
		}},
		{"group", map[string]any{"Group": (*orgsyncv1.DesiredGroup)(nil), "Members": []memberRow{{Kind: "user"}, {Kind: "group"}}}},
		{"plan", map[string]any{"Result": map[string]any{"Targets": groupPlan([]*orgsyncv1.PlannedChange{{Path: "entra.user.E1", Action: orgsyncv1.ChangeAction_CHANGE_ACTION_CREATE}})}}},
		{"approvals", map[string]any{"Batches": []batchView{viewBatch(batch)}, "Decided": []batchView{viewBatch(&orgsyncv1.PendingBatch{})},
			"Requests": []*orgsyncv1.AccessRequest{{}, {State: orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_PENDING}}}},
		{"health", map[string]any{"Status": &orgsyncv1.GetStatusResponse{Services: []*orgsyncv1.ServiceStatus{{}}, Streams: []*orgsyncv1.StreamStatus{{}}},
			"Writers": []writerView{{Name: "entra-writer", DeadLetters: []deadLetter{{}}}}}},
		{"error", map[string]any{"Status": 403, "Message": "no"}},
		{"signedout", nil},
	}
	for _, tt := range tests {
		t.Run(tt.page, func(t *testing.T) {
			for _, role := range auth.Roles {
				who := person{Principal: auth.Principal{Subject: "s", Roles: []auth.Role{role}}, csrf: "token"}
				v := view{Title: tt.page, Person: who, SignedIn: true, CSRF: who.csrf, TraceURL: "https://t/{traceId}", Data: tt.data}
				if err := tmpl.byName[tt.page].ExecuteTemplate(io.Discard, "layout.html", v); err != nil {
					t.Errorf("as %s: %v", role, err)
				}
			}
		})
	}
}

func TestGraphMetricsKeepsBudgetAndThrottling(t *testing.T) {
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `# HELP orgsync_graph_throttled_total Graph 429 answers
# TYPE orgsync_graph_throttled_total counter
orgsync_graph_throttled_total{orgsync_throttle_scope="App"} 3
orgsync_graph_budget_used_ratio 0.25
orgsync_graph_throttle_wait_seconds_bucket{le="1"} 2
orgsync_graph_throttle_wait_seconds_sum 4.5
orgsync_directory_writes_total{target="entra"} 10
`)
	}))
	t.Cleanup(metrics.Close)
	h := &Handler{cfg: Config{HTTPClient: metrics.Client()}}
	got := h.graphMetrics(httptest.NewRequest(http.MethodGet, "/health", nil), metrics.URL)
	want := []string{
		"orgsync_graph_budget_used_ratio 0.25",
		"orgsync_graph_throttle_wait_seconds_sum 4.5",
		`orgsync_graph_throttled_total{orgsync_throttle_scope="App"} 3`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Graph metrics (-want +got):\n%s", diff)
	}
}

func TestFieldChanges(t *testing.T) {
	user := func(enabled bool, title string) *orgsyncv1.DesiredObject {
		return &orgsyncv1.DesiredObject{Key: "E1", Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: "E1", AccountEnabled: enabled, JobTitle: title}}}
	}
	tests := []struct {
		name          string
		before, after *orgsyncv1.DesiredObject
		want          []string
	}{
		{"create", nil, user(true, "Engineer"), []string{"accountEnabled: — → true", "jobTitle: — → Engineer", "workerId: — → E1"}},
		{"disable", user(true, "Engineer"), user(false, "Engineer"), []string{"accountEnabled: true → false"}},
		{"title cleared", user(true, "Engineer"), user(true, ""), []string{"jobTitle: Engineer → —"}},
		{"unchanged", user(true, "Engineer"), user(true, "Engineer"), nil},
		{"tombstone", user(true, "Engineer"), &orgsyncv1.DesiredObject{Key: "E1", Tombstone: true}, []string{"accountEnabled: true → —", "jobTitle: Engineer → —", "workerId: E1 → —"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, fieldChanges(tt.before, tt.after)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}
