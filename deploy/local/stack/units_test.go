package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/deploy/local/stack"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
)

const (
	scimSource = "entra-hr"
	scimToken  = "scim-bearer-token-0123456789abcdef"
)

// unitsPolicy is the shared policy file: hr-ingest's SCIM source, whose hierarchy org-model reads.
const unitsPolicy = `upnDomains: [contoso.com]
sources:
  - name: entra-hr
    kind: scim
    secrets: [{env: SCIM_TOKEN}]
    hierarchy: [company, division, department]
groups:
  rollup: {enabled: true}
`

// scimUser is one operation of a SCIM BulkRequest as Microsoft documents it for API-driven
// inbound provisioning: the core and enterprise user schemas, matched on externalId.
func scimUser(externalID, given, family, organization, division, department string) map[string]any {
	enterprise := map[string]any{"employeeNumber": externalID, "organization": organization, "division": division, "costCenter": "CC-" + division}
	if department != "" {
		enterprise["department"] = department
	}
	return map[string]any{
		"method": "POST", "bulkId": externalID, "path": "/Users",
		"data": map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"externalId":  externalID,
			"userName":    given + "." + family + "@contoso.com",
			"name":        map[string]any{"givenName": given, "familyName": family},
			"displayName": given + " " + family,
			"emails":      []map[string]any{{"value": given + "." + family + "@contoso.com", "type": "work", "primary": true}},
			"title":       "Associate",
			"userType":    "Employee",
			"active":      true,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": enterprise,
		},
	}
}

func bulkRequest(ops ...map[string]any) []byte {
	body, err := json.Marshal(map[string]any{
		"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"},
		"Operations":   ops,
		"failOnErrors": nil,
	})
	if err != nil {
		panic(err)
	}
	return body
}

// postBulk sends a BulkRequest to hr-ingest's Entra-compatible bulkUpload path.
func postBulk(t *testing.T, s *stack.Stack, body []byte) {
	t.Helper()
	url := "http://" + s.HRIngest.HTTPAddr() + "/servicePrincipals/sp-1/synchronization/jobs/job-1/bulkUpload"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("Authorization", "Bearer "+scimToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("bulkUpload: %d %s", resp.StatusCode, respBody)
	}
}

// groupMembers lists the members of the emulator's group with displayName as employee ids (users)
// and display names (groups), sorted; nil when the group does not exist.
func groupMembers(s *stack.Stack, displayName string) []string {
	group, ok := s.Emulator.GroupByDisplayName(displayName)
	if !ok {
		return nil
	}
	out := []string{}
	for _, id := range s.Emulator.Members(group.ID()) {
		if user, ok := s.Emulator.User(id); ok {
			out = append(out, user.String("employeeId"))
		} else if g, ok := s.Emulator.Group(id); ok {
			out = append(out, "group:"+g.String("displayName"))
		}
	}
	slices.Sort(out)
	return out
}

// TestSCIMHierarchyBecomesUnitAndRollupGroups sends SCIM bulk requests whose users carry only
// organization, division and department, and checks that the Graph emulator ends up with a unit
// group per department and division and roll-up groups nesting them — and that a department
// change moves the worker and removes the department no one is left in.
func TestSCIMHierarchyBecomesUnitAndRollupGroups(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "orgsync.yaml")
	if err := os.WriteFile(policyFile, []byte(unitsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := stack.Start(ctx, stack.Options{
		StoreDir: t.TempDir(), UPNDomain: "contoso.com", PolicyFile: policyFile,
		Sources: []hringest.SourceConfig{{Name: scimSource, Kind: hringest.KindSCIM, Tokens: []string{scimToken}}},
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

	postBulk(t, s, bulkRequest(
		scimUser("701001", "Ana", "Jones", "Contoso", "Sales", "EMEA"),
		scimUser("701002", "Ben", "Smith", "Contoso", "Sales", "US"),
		scimUser("701003", "Cleo", "Park", "Contoso", "Operations", "Facilities"),
		scimUser("701004", "Dan", "Reyes", "Contoso", "Sales", ""), // the division's head, in no department
	))
	want := map[string][]string{
		"Org - EMEA":             {"701001"},
		"Org - US":               {"701002"},
		"Org - Facilities":       {"701003"},
		"Org - Sales":            {"701004"},
		"Org - Contoso":          {},
		"Org - Sales (all)":      {"group:Org - EMEA (all)", "group:Org - Sales", "group:Org - US (all)"},
		"Org - Operations (all)": {"group:Org - Facilities (all)", "group:Org - Operations"},
		"Org - Contoso (all)":    {"group:Org - Contoso", "group:Org - Operations (all)", "group:Org - Sales (all)"},
		"Org - EMEA (all)":       {"group:Org - EMEA"},
	}
	got := func() map[string][]string {
		out := map[string][]string{}
		for name := range want {
			out[name] = groupMembers(s, name)
		}
		return out
	}
	waitFor(t, func() bool { return cmp.Equal(want, got()) })
	if diff := cmp.Diff(want, got()); diff != "" {
		t.Fatalf("groups in the emulator (-want +got):\n%s", diff)
	}

	// Ben moves to EMEA: he leaves US's group for EMEA's, and US, now empty, is removed.
	postBulk(t, s, bulkRequest(scimUser("701002", "Ben", "Smith", "Contoso", "Sales", "EMEA")))
	// The changes reach Graph as separate writes (a membership, a group deletion, a roll-up's
	// membership), so the test waits for the whole of the end state, not for its first part.
	salesRollup := []string{"group:Org - EMEA (all)", "group:Org - Sales"}
	moved := func() bool {
		_, usLeft := s.Emulator.GroupByDisplayName("Org - US")
		return !usLeft && cmp.Equal([]string{"701001", "701002"}, groupMembers(s, "Org - EMEA")) &&
			cmp.Equal(salesRollup, groupMembers(s, "Org - Sales (all)"))
	}
	waitFor(t, moved)
	if _, usLeft := s.Emulator.GroupByDisplayName("Org - US"); usLeft {
		t.Error("Org - US is still in the emulator after its last member moved")
	}
	if diff := cmp.Diff([]string{"701001", "701002"}, groupMembers(s, "Org - EMEA")); diff != "" {
		t.Errorf("EMEA after the move (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(salesRollup, groupMembers(s, "Org - Sales (all)")); diff != "" {
		t.Errorf("Sales roll-up after the move (-want +got):\n%s", diff)
	}
}

// waitFor polls cond for up to a minute; the test then checks and reports what it found.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}
