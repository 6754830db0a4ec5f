package emulator_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

const (
	testSku   = "6fd2c87f-b296-42f0-b197-1e91e994b900" // ENTERPRISEPACK's id
	testPlanA = "efb87545-963c-4e0d-99df-69c6916d9eb0"
	testPlanB = "57ff2da0-773e-42df-b2af-ffb7a2317929"
)

func TestGroupBasedLicensing(t *testing.T) {
	directory, client := newTestServer(t, emulator.WithSubscribedSkus(emulator.SubscribedSku{
		SkuID: testSku, SkuPartNumber: "ENTERPRISEPACK", PrepaidUnits: 1, ServicePlanIDs: []string{testPlanA, testPlanB},
	}))
	create := func(path string, body map[string]any) string {
		t.Helper()
		answer := client.do(http.MethodPost, path, body)
		if answer.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, answer.status, answer.raw)
		}
		id, _ := answer.body["id"].(string)
		return id
	}
	first := create("/v1.0/users", userBody("First Member", map[string]any{"usageLocation": "GB"}))
	second := create("/v1.0/users", userBody("Second Member", map[string]any{"usageLocation": "GB"}))
	nowhere := create("/v1.0/users", userBody("No Location", nil))
	group := create("/v1.0/groups", map[string]any{"displayName": "Licensed", "mailNickname": "licensed", "securityEnabled": true, "mailEnabled": false})
	for _, member := range []string{first, second, nowhere} {
		if answer := client.do(http.MethodPost, "/v1.0/groups/"+group+"/members/$ref", map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + member}); answer.status != http.StatusNoContent {
			t.Fatalf("adding a member: %d %s", answer.status, answer.raw)
		}
	}
	assign := func(add []map[string]any, remove []string) response {
		t.Helper()
		return client.do(http.MethodPost, "/v1.0/groups/"+group+"/assignLicense", map[string]any{"addLicenses": add, "removeLicenses": remove})
	}

	t.Run("refusals change nothing", func(t *testing.T) {
		for name, answer := range map[string]response{
			"unknown SKU":            assign([]map[string]any{{"skuId": "00000000-0000-4000-8000-000000000001", "disabledPlans": []string{}}}, []string{}),
			"plan not in the SKU":    assign([]map[string]any{{"skuId": testSku, "disabledPlans": []string{"00000000-0000-4000-8000-000000000002"}}}, []string{}),
			"removing an absent SKU": assign([]map[string]any{}, []string{testSku}),
			"removeLicenses missing": client.do(http.MethodPost, "/v1.0/groups/"+group+"/assignLicense", map[string]any{"addLicenses": []any{}}),
		} {
			if answer.status != http.StatusBadRequest || errorOf(answer).Code != "Request_BadRequest" {
				t.Errorf("%s: %d %q, want 400 Request_BadRequest", name, answer.status, errorOf(answer).Code)
			}
		}
		if answer := client.do(http.MethodPost, "/v1.0/groups/00000000-0000-4000-8000-000000000003/assignLicense", map[string]any{"addLicenses": []any{}, "removeLicenses": []any{}}); answer.status != http.StatusNotFound {
			t.Errorf("unknown group: %d, want 404", answer.status)
		}
		if got := directory.GroupLicenses(group); len(got) != 0 {
			t.Errorf("licences after refusals: %v", got)
		}
	})

	t.Run("assigned to the group and computed per member", func(t *testing.T) {
		answer := assign([]map[string]any{{"skuId": testSku, "disabledPlans": []string{testPlanB}}}, []string{})
		if answer.status != http.StatusAccepted || answer.body["id"] != group {
			t.Fatalf("assignLicense: %d %s, want 202 with the group", answer.status, answer.raw)
		}
		read := client.do(http.MethodGet, "/v1.0/groups/"+group+"?$select=id,assignedLicenses", nil)
		want := []any{map[string]any{"skuId": testSku, "disabledPlans": []any{testPlanB}}}
		if diff := cmp.Diff(want, read.body["assignedLicenses"]); diff != "" {
			t.Errorf("assignedLicenses (-want +got):\n%s", diff)
		}
		states := map[string]string{}
		for _, user := range []string{first, second, nowhere} {
			read := client.do(http.MethodGet, "/v1.0/users/"+user+"?$select=id,licenseAssignmentStates", nil)
			list, _ := read.body["licenseAssignmentStates"].([]any)
			if len(list) != 1 {
				t.Fatalf("user %s: licenseAssignmentStates %v, want one", user, read.body["licenseAssignmentStates"])
			}
			state := list[0].(map[string]any)
			if state["assignedByGroup"] != group || state["skuId"] != testSku {
				t.Errorf("user %s: %v, want the SKU assigned by the group", user, state)
			}
			errorValue, _ := state["error"].(string)
			states[user] = state["state"].(string) + "/" + errorValue
		}
		wantStates := map[string]string{first: "Active/", second: "Error/CountViolation", nowhere: "Error/ProhibitedInUsageLocationViolation"}
		if diff := cmp.Diff(wantStates, states); diff != "" {
			t.Errorf("states (-want +got):\n%s", diff)
		}
		errored := client.do(http.MethodGet, "/v1.0/groups/"+group+"/membersWithLicenseErrors", nil)
		var ids []string
		for _, member := range errored.body["value"].([]any) {
			ids = append(ids, member.(map[string]any)["id"].(string))
		}
		if diff := cmp.Diff([]string{second, nowhere}, ids); diff != "" {
			t.Errorf("membersWithLicenseErrors (-want +got):\n%s", diff)
		}
		skus := client.do(http.MethodGet, "/v1.0/subscribedSkus", nil)
		sku := skus.body["value"].([]any)[0].(map[string]any)
		if sku["consumedUnits"] != float64(1) || sku["prepaidUnits"].(map[string]any)["enabled"] != float64(1) {
			t.Errorf("subscribedSkus: consumed %v prepaid %v, want 1 of 1", sku["consumedUnits"], sku["prepaidUnits"])
		}
	})

	t.Run("removed from the group and from its members", func(t *testing.T) {
		if answer := assign([]map[string]any{}, []string{testSku}); answer.status != http.StatusAccepted {
			t.Fatalf("removing: %d %s", answer.status, answer.raw)
		}
		if got := directory.LicenseStates(first); len(got) != 0 || directory.ConsumedUnits(testSku) != 0 {
			t.Errorf("after removal: states %v, consumed %d", got, directory.ConsumedUnits(testSku))
		}
	})
}
