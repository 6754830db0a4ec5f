package synth

import (
	"encoding/json"
	"strings"
)

// SCIM schema URNs of a bulk request as Microsoft Entra's API-driven inbound provisioning sends it.
const (
	scimBulkRequest = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	scimUser        = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimEnterprise  = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// SCIMExtension is the custom extension schema carrying what the core and enterprise schemas
	// have no place for: the org unit and the dates.
	SCIMExtension = "urn:ietf:params:scim:schemas:extension:orgsync:1.0:User"
)

// MaxSCIMOperations is the most operations one SCIM bulk request may carry (Entra's limit).
const MaxSCIMOperations = 50

// SCIMBulk is a SCIM BulkRequest with a POST /Users operation per worker event (unit events
// have no SCIM form and are left out); send at most MaxSCIMOperations events per request. Each
// operation carries "active" explicitly, so an update never reads as a leave by omission.
func SCIMBulk(events []Event) []byte {
	type operation struct {
		Method string         `json:"method"`
		BulkID string         `json:"bulkId"`
		Path   string         `json:"path"`
		Data   map[string]any `json:"data"`
	}
	request := struct {
		Schemas    []string    `json:"schemas"`
		Operations []operation `json:"Operations"`
	}{Schemas: []string{scimBulkRequest}, Operations: []operation{}}
	for _, e := range events {
		w := e.Worker
		if w == nil {
			continue
		}
		enterprise := map[string]any{"employeeNumber": w.WorkerID, "costCenter": w.CostCenter, "organization": w.Company}
		if w.ManagerWorkerID != "" {
			enterprise["manager"] = map[string]any{"value": w.ManagerWorkerID}
		}
		custom := map[string]any{"orgUnitId": w.OrgUnitID, "hireDate": w.HireDate, "startDate": w.StartDate}
		if w.EndDate != "" {
			custom["endDate"] = w.EndDate
		}
		data := map[string]any{
			"schemas":      []string{scimUser, scimEnterprise, SCIMExtension},
			"externalId":   w.WorkerID,
			"userName":     strings.ToLower(w.WorkerID) + "@hr.example.test",
			"name":         map[string]any{"givenName": w.Name.GivenName, "familyName": w.Name.FamilyName},
			"title":        w.JobTitle,
			"userType":     w.EmploymentType,
			"active":       w.EmploymentStatus != "terminated",
			"addresses":    []map[string]any{{"type": "work", "locality": w.Location, "primary": true}},
			scimEnterprise: enterprise,
			SCIMExtension:  custom,
		}
		request.Operations = append(request.Operations, operation{Method: "POST", BulkID: e.ID, Path: "/Users", Data: data})
	}
	body, err := json.Marshal(request)
	if err != nil {
		panic(err)
	}
	return body
}
