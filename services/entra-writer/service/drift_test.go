package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/entra-writer/internal/drift"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// handEdits are edits an administrator makes in Entra ID outside orgsync, through Graph: an
// attribute of a managed user, a managed user deleted, a managed group renamed, a member added to
// a managed group that orgsync did not add (one of orgsync's users, and an account orgsync does
// not know), a desired member removed, and manager links changed, removed and added.
func handEdits(t *testing.T, p pipeline) {
	t.Helper()
	user := func(workerID string) string {
		u, ok := p.emulator.UserByEmployeeID(workerID)
		if !ok {
			t.Fatalf("no user %s", workerID)
		}
		return u["id"].(string)
	}
	group := func(key string) string {
		g, ok := p.emulator.GroupByMailNickname("orgsync-" + key)
		if !ok {
			t.Fatalf("no group %s", key)
		}
		return g["id"].(string)
	}
	outsider := graphCall(t, p, http.MethodPost, "/users", map[string]any{
		"accountEnabled": true, "displayName": "Hand Made", "mailNickname": "hand.made",
		"userPrincipalName": "hand.made@corp.example.com",
		"passwordProfile":   map[string]any{"password": "Xy7!hand-made-Passw0rd"},
	})["id"].(string)
	graphCall(t, p, http.MethodPatch, "/users/"+user("E000005"), map[string]any{"jobTitle": "Chief Everything", "department": "Elsewhere"})
	graphCall(t, p, http.MethodPatch, "/groups/"+group("unit-u0001"), map[string]any{"displayName": "Renamed by hand"})
	ref := func(id string) map[string]any {
		return map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + id}
	}
	graphCall(t, p, http.MethodPost, "/groups/"+group("unit-u0000")+"/members/$ref", ref(user("E000001")))
	graphCall(t, p, http.MethodPost, "/groups/"+group("unit-u0000")+"/members/$ref", ref(outsider))
	graphCall(t, p, http.MethodDelete, "/groups/"+group("unit-u0002")+"/members/"+user("E000002")+"/$ref", nil)
	graphCall(t, p, http.MethodDelete, "/users/"+user("E000007"), nil)
	userRef := func(id string) map[string]any {
		return map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/users/" + id}
	}
	graphCall(t, p, http.MethodPut, "/users/"+user("E000004")+"/manager/$ref", userRef(user("E000002"))) // HR: E000001
	graphCall(t, p, http.MethodDelete, "/users/"+user("E000008")+"/manager/$ref", nil)                   // HR: E000002
	graphCall(t, p, http.MethodPut, "/users/"+user("E000000")+"/manager/$ref", userRef(user("E000003"))) // HR: none
}

// graphCall sends one Graph request to the emulator and returns its JSON answer, if any.
func graphCall(t *testing.T, p pipeline, method, path string, body any) map[string]any {
	t.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, p.graphURL+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	answer := map[string]any{}
	if resp.StatusCode != http.StatusNoContent {
		_ = json.NewDecoder(resp.Body).Decode(&answer)
	}
	return answer
}

// findingKeys lists findings as "kind key corrected?" lines, sorted.
func findingKeys(findings []drift.Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, fmt.Sprintf("%s %s corrected=%v", f.Kind, f.Key, f.Corrected))
	}
	sort.Strings(out)
	return out
}

// differences lists how the emulator differs from the synthetic organisation's desired state:
// one entry per group whose name or members differ, one per user whose attributes differ.
func (o org) differences(p pipeline) []string {
	var diffs []string
	for _, obj := range o.objects {
		switch {
		case obj.GetGroup() != nil:
			key := obj.GetGroup().GetGroupKey()
			g, ok := p.emulator.GroupByMailNickname(obj.GetGroup().GetMailNickname())
			if !ok {
				diffs = append(diffs, "no group "+key)
				continue
			}
			var want []string
			for _, workerID := range o.members[key] {
				if u, ok := p.emulator.UserByEmployeeID(workerID); ok {
					want = append(want, u["id"].(string))
				}
			}
			got := p.emulator.Members(g["id"].(string))
			slices.Sort(want)
			slices.Sort(got)
			if d := cmp.Diff(want, got); d != "" {
				diffs = append(diffs, fmt.Sprintf("members of %s (-want +got):\n%s", key, d))
			}
			if g["displayName"] != obj.GetGroup().GetDisplayName() {
				diffs = append(diffs, fmt.Sprintf("group %s is named %v", key, g["displayName"]))
			}
		case obj.GetUser() != nil:
			u := obj.GetUser()
			got, _ := p.emulator.UserByEmployeeID(u.GetWorkerId())
			if got["jobTitle"] != u.GetJobTitle() || got["department"] != u.GetDepartment() {
				diffs = append(diffs, fmt.Sprintf("user %s: jobTitle %v, department %v", u.GetWorkerId(), got["jobTitle"], got["department"]))
			}
			if got == nil {
				continue
			}
			var want string
			if manager, ok := p.emulator.UserByEmployeeID(u.GetManagerWorkerId()); ok && u.GetManagerWorkerId() != "" {
				want = manager["id"].(string)
			}
			if managerID, _ := p.emulator.ManagerOf(got["id"].(string)); managerID != want {
				diffs = append(diffs, fmt.Sprintf("user %s: manager %q, want %q", u.GetWorkerId(), managerID, want))
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

// TestDrift converges a small organisation, edits it by hand through Graph, and runs the drift
// reconcile (Graph delta queries, through the real SDK): with policy correct every edit is undone
// and a further pass finds nothing (orgsync's own corrections are not drift); with policy report
// every edit is found and none is undone.
func TestDrift(t *testing.T) {
	wantFindings := []string{
		"group unit-u0001 corrected=%v",
		"user E000000 corrected=%v",
		"user E000004 corrected=%v",
		"user E000008 corrected=%v",
		"membership unit-u0000/E000001 corrected=%v",
		"membership unit-u0000/%s corrected=%v",
		"membership unit-u0001/E000007 corrected=%v",
		"membership unit-u0002/E000002 corrected=%v",
		"user E000005 corrected=%v",
		"user E000007 corrected=%v",
	}
	for _, tc := range []struct {
		name   string
		policy drift.Policy
	}{
		{"correct", drift.Correct},
		{"report", drift.Report},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := synthOrg(12, 3)
			p := newPipeline(t, emulator.Faults{})
			svc := p.startWriterWith(t, func(cfg *Config) { cfg.DriftPolicy = tc.policy }, nil)
			p.publish(t, o.objects)
			p.waitForResults(t, len(o.objects), time.Minute)
			if d := o.differences(p); len(d) != 0 {
				t.Fatalf("not converged before the edits:\n%s", strings.Join(d, "\n"))
			}

			// The first pass reads everything and finds the directory as desired.
			findings, err := svc.ReconcileDrift(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(findings) != 0 {
				t.Fatalf("first pass found drift in a converged directory: %v", findingKeys(findings))
			}

			deleted, _ := p.emulator.UserByEmployeeID("E000007")
			handEdits(t, p)
			outsider, _ := p.emulator.User("hand.made@corp.example.com")
			findings, err = svc.ReconcileDrift(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			corrected := tc.policy == drift.Correct
			var want []string
			for _, line := range wantFindings {
				if strings.Contains(line, "%s") {
					want = append(want, fmt.Sprintf(line, outsider["id"], corrected))
				} else {
					want = append(want, fmt.Sprintf(line, corrected))
				}
			}
			sort.Strings(want)
			if d := cmp.Diff(want, findingKeys(findings)); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}

			// Corrected, nothing differs, and the deleted account is back as itself, not as a
			// second account. Reported, the edits are all still there: the members of unit-u0000 and
			// unit-u0002, the name of unit-u0001, user E000005, user E000007 (gone, and so not
			// counted among the members unit-u0001 should have), and the manager links of E000000,
			// E000004 and E000008.
			wantDiffs := 0
			if !corrected {
				wantDiffs = 8
			}
			if restored, ok := p.emulator.UserByEmployeeID("E000007"); corrected && (!ok || restored["id"] != deleted["id"]) {
				t.Errorf("deleted account %v: restored as %v", deleted["id"], restored["id"])
			}
			if got := len(p.emulator.Users()); corrected && got != o.workers+1 {
				t.Errorf("%d accounts after the corrections, want %d (the workers and the hand-made one)", got, o.workers+1)
			}
			if d := o.differences(p); len(d) != wantDiffs {
				t.Errorf("%d objects differ from the desired state after the pass, want %d:\n%s", len(d), wantDiffs, strings.Join(d, "\n"))
			}

			// The corrections (or the unchanged edits) are not new drift.
			findings, err = svc.ReconcileDrift(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if corrected && len(findings) != 0 {
				t.Errorf("a pass after the corrections found drift: %v", findingKeys(findings))
			}
		})
	}
}

// TestDriftPassRetriesAFailedCorrection edits a user by hand while Graph's write quota is spent,
// so the pass finds the drift but cannot correct it: the next pass, once writes pass again (the
// 429's Retry-After, which keeps every call of the writer out until it ends, has passed), still
// finds and corrects it (the failed pass does not move past the change it could not correct).
func TestDriftPassRetriesAFailedCorrection(t *testing.T) {
	o := synthOrg(6, 2)
	p := newPipeline(t, emulator.Faults{})
	svc := p.startWriterWith(t, nil, nil)
	p.publish(t, o.objects)
	p.waitForResults(t, len(o.objects), time.Minute)
	if _, err := svc.ReconcileDrift(t.Context()); err != nil {
		t.Fatal(err)
	}

	// One write left in the window: the hand edit takes it, the correction is throttled.
	p.emulator.SetFaults(emulator.Faults{WriteQuota: 1, QuotaWindow: 2 * time.Second})
	u, _ := p.emulator.UserByEmployeeID("E000003")
	graphCall(t, p, http.MethodPatch, "/users/"+u["id"].(string), map[string]any{"jobTitle": "Edited by hand"})
	if _, err := svc.ReconcileDrift(t.Context()); err == nil {
		t.Fatal("a pass whose correction was throttled reported no error")
	}
	if got, _ := p.emulator.UserByEmployeeID("E000003"); got["jobTitle"] != "Edited by hand" {
		t.Fatalf("jobTitle = %v while writes are refused", got["jobTitle"])
	}

	p.emulator.SetFaults(emulator.Faults{})
	var findings []drift.Finding
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		findings, err = svc.ReconcileDrift(t.Context())
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"user E000003 corrected=true"}, findingKeys(findings)); d != "" {
		t.Errorf("findings of the pass after the throttled one (-want +got):\n%s", d)
	}
	if got, _ := p.emulator.UserByEmployeeID("E000003"); got["jobTitle"] != "Engineer" {
		t.Errorf("jobTitle = %v after the second pass, want Engineer", got["jobTitle"])
	}
}
