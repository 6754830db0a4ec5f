package emulator

import (
	"net/http"
	"slices"
	"strings"
)

// Operations of group-based licensing, as counted in Stats.Operations.
const (
	OpListSubscribedSkus         = "list.subscribedSkus"
	OpGroupAssignLicense         = "group.assignLicense"
	OpListMembersWithLicenseErrs = "list.membersWithLicenseErrors"
)

// SubscribedSku is one product the tenant bought, seeded with WithSubscribedSkus: Graph's
// subscribedSku, with prepaidUnits.enabled as PrepaidUnits.
type SubscribedSku struct {
	SkuID         string
	SkuPartNumber string
	PrepaidUnits  int
	// ServicePlanIDs are the SKU's service plans: the only ids disabledPlans may name.
	ServicePlanIDs []string
	// ProhibitedUsageLocations are the country codes where the SKU's services are not available
	// (an emulator knob: Graph knows this per service plan).
	ProhibitedUsageLocations []string
}

// WithSubscribedSkus seeds the tenant's subscriptions.
func WithSubscribedSkus(skus ...SubscribedSku) Option {
	return func(s *Server) { s.skus = append(s.skus, skus...) }
}

// WithTenantUsageLocation sets the tenant's country, which group-based licensing uses for a
// member without usageLocation ("any users without a usage location specified inherit the
// location of the directory"). Without it, such a member's licences are in error.
func WithTenantUsageLocation(countryCode string) Option {
	return func(s *Server) { s.tenantUsageLocation = countryCode }
}

// assignedLicense is one licence a group gives its members.
type assignedLicense struct {
	skuID         string
	disabledPlans []string
}

func (l assignedLicense) render() Object {
	plans := make([]any, len(l.disabledPlans))
	for i, plan := range l.disabledPlans {
		plans[i] = plan
	}
	return Object{"skuId": l.skuID, "disabledPlans": plans}
}

// LicenseAssignmentState is one of a user's licence assignments (Graph's licenseAssignmentState).
type LicenseAssignmentState struct {
	SkuID           string
	AssignedByGroup string
	DisabledPlans   []string
	// State is Active or Error; Error is Graph's error: CountViolation,
	// ProhibitedInUsageLocationViolation, ...
	State, Error string
}

func (s LicenseAssignmentState) render() Object {
	plans := make([]any, len(s.DisabledPlans))
	for i, plan := range s.DisabledPlans {
		plans[i] = plan
	}
	var licenseError any
	if s.Error != "" {
		licenseError = s.Error
	}
	return Object{"skuId": s.SkuID, "assignedByGroup": s.AssignedByGroup, "disabledPlans": plans, "state": s.State, "error": licenseError}
}

func (s *Server) licenseRoutes() []route {
	return []route{
		newRoute(http.MethodGet, "subscribedSkus", OpListSubscribedSkus, s.listSubscribedSkus),
		newRoute(http.MethodPost, "groups/{group}/assignLicense", OpGroupAssignLicense, s.assignGroupLicense),
		newRoute(http.MethodGet, "groups/{group}/membersWithLicenseErrors", OpListMembersWithLicenseErrs, s.listMembersWithLicenseErrors),
	}
}

func (s *Server) sku(skuID string) (SubscribedSku, bool) {
	for _, sku := range s.skus {
		if strings.EqualFold(sku.SkuID, skuID) {
			return sku, true
		}
	}
	return SubscribedSku{}, false
}

// licenseStates computes every user's licence assignments from the groups' licences, as Entra's
// group-based licensing would after it caught up: groups in creation order, direct members in
// the order they were added (Graph does not license through nested groups). A user takes one
// unit of a SKU however many groups give it; a unit beyond prepaidUnits is a CountViolation; a
// SKU not available in the user's usageLocation (or, without one, the tenant's; without that,
// nowhere) is a ProhibitedInUsageLocationViolation. The caller holds s.mu.
func (s *Server) licenseStates() (states map[string][]LicenseAssignmentState, consumed map[string]int) {
	states, consumed = map[string][]LicenseAssignmentState{}, map[string]int{}
	active := map[string]map[string]bool{} // user id → sku ids active
	for _, group := range s.directory.ofKind(kindGroup) {
		for _, license := range group.licenses {
			sku, _ := s.sku(license.skuID)
			for _, member := range group.members {
				if member.kind != kindUser {
					continue
				}
				user, ok := s.directory.objects[member.memberID]
				if !ok {
					continue
				}
				state := LicenseAssignmentState{SkuID: sku.SkuID, AssignedByGroup: group.id(), DisabledPlans: slices.Clone(license.disabledPlans), State: "Active"}
				location := user.props.String("usageLocation")
				if location == "" {
					location = s.tenantUsageLocation
				}
				switch {
				case location == "" || slices.ContainsFunc(sku.ProhibitedUsageLocations, func(code string) bool { return strings.EqualFold(code, location) }):
					state.State, state.Error = "Error", "ProhibitedInUsageLocationViolation"
				case active[member.memberID][sku.SkuID]:
				case consumed[sku.SkuID] >= sku.PrepaidUnits:
					state.State, state.Error = "Error", "CountViolation"
				default:
					consumed[sku.SkuID]++
					if active[member.memberID] == nil {
						active[member.memberID] = map[string]bool{}
					}
					active[member.memberID][sku.SkuID] = true
				}
				states[member.memberID] = append(states[member.memberID], state)
			}
		}
	}
	return states, consumed
}

// listSubscribedSkus handles GET /subscribedSkus.
func (s *Server) listSubscribedSkus(c *call) error {
	s.mu.Lock()
	_, consumed := s.licenseStates()
	values := make([]any, 0, len(s.skus))
	for _, sku := range s.skus {
		plans := make([]any, len(sku.ServicePlanIDs))
		for i, plan := range sku.ServicePlanIDs {
			plans[i] = Object{"servicePlanId": plan, "appliesTo": "User", "provisioningStatus": "Success"}
		}
		values = append(values, Object{
			"id": "tenant_" + sku.SkuID, "skuId": sku.SkuID, "skuPartNumber": sku.SkuPartNumber, "appliesTo": "User",
			"capabilityStatus": "Enabled", "consumedUnits": consumed[sku.SkuID], "servicePlans": plans,
			"prepaidUnits": Object{"enabled": sku.PrepaidUnits, "suspended": 0, "warning": 0, "lockedOut": 0},
		})
	}
	s.mu.Unlock()
	return s.writeJSON(c, http.StatusOK, Object{"@odata.context": metadataURL + "subscribedSkus", "value": values})
}

// assignGroupLicense handles POST /groups/{id}/assignLicense with {"addLicenses": [{"skuId",
// "disabledPlans"}], "removeLicenses": [skuId]}: both required (either may be empty). An skuId
// the tenant has no subscription for, a disabled plan that is not one of the SKU's, or the removal
// of a licence the group does not have is refused with 400 and nothing changes. Success is 202
// with the group, as Graph documents.
func (s *Server) assignGroupLicense(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	addRaw, addGiven := body["addLicenses"].([]any)
	removeRaw, removeGiven := body["removeLicenses"].([]any)
	if !addGiven || !removeGiven {
		return newAPIError(http.StatusBadRequest, CodeRequestBadRequest, "addLicenses and removeLicenses are required; either may be an empty collection.")
	}
	var add []assignedLicense
	for _, raw := range addRaw {
		entry, _ := raw.(map[string]any)
		skuID, _ := entry["skuId"].(string)
		sku, known := s.sku(skuID)
		if !known {
			return newAPIError(http.StatusBadRequest, CodeRequestBadRequest, "License %s does not correspond to a valid company License.", skuID)
		}
		license := assignedLicense{skuID: sku.SkuID}
		plans, _ := entry["disabledPlans"].([]any)
		for _, rawPlan := range plans {
			plan, _ := rawPlan.(string)
			if !slices.ContainsFunc(sku.ServicePlanIDs, func(id string) bool { return strings.EqualFold(id, plan) }) {
				return newAPIError(http.StatusBadRequest, CodeRequestBadRequest, "Service plan %s is not part of license %s.", plan, sku.SkuID)
			}
			license.disabledPlans = append(license.disabledPlans, strings.ToLower(plan))
		}
		add = append(add, license)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	if !found || s.faults.lagging(group) {
		return resourceNotFound(c.param("group"))
	}
	kept := slices.Clone(group.licenses)
	for _, raw := range removeRaw {
		skuID, _ := raw.(string)
		at := slices.IndexFunc(kept, func(l assignedLicense) bool { return strings.EqualFold(l.skuID, skuID) })
		if at < 0 {
			return newAPIError(http.StatusBadRequest, CodeRequestBadRequest, "License %s is not assigned to the group and cannot be removed.", skuID)
		}
		kept = slices.Delete(kept, at, at+1)
	}
	for _, license := range add {
		// Adding a SKU the group already has replaces its disabled plans.
		if at := slices.IndexFunc(kept, func(l assignedLicense) bool { return l.skuID == license.skuID }); at >= 0 {
			kept[at] = license
			continue
		}
		kept = append(kept, license)
	}
	group.licenses = kept
	group.changed = s.directory.nextSequence()
	rendered := s.render(group, nil, false)
	rendered["@odata.context"] = contextURL("groups", nil, true)
	return s.writeJSON(c, http.StatusAccepted, rendered)
}

// listMembersWithLicenseErrors handles GET /groups/{id}/membersWithLicenseErrors: the group's
// members with a licence from this group in error.
func (s *Server) listMembersWithLicenseErrors(c *call) error {
	query, err := parseCollectionQuery(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	var page Object
	if found {
		states, _ := s.licenseStates()
		var items []collectionItem
		for _, member := range group.members {
			if slices.ContainsFunc(states[member.memberID], func(st LicenseAssignmentState) bool {
				return st.AssignedByGroup == group.id() && st.State == "Error"
			}) {
				items = append(items, collectionItem{sequence: member.sequence, object: s.directory.objects[member.memberID]})
			}
		}
		page = s.collectionPage(c.request, "directoryObjects", items, query, true)
	}
	s.mu.Unlock()
	if !found {
		return resourceNotFound(c.param("group"))
	}
	return s.writeJSON(c, http.StatusOK, page)
}

// renderLicenseProperty renders a group's assignedLicenses or a user's licenseAssignmentStates,
// which Graph returns only on $select; ok is false for any other property. The caller holds s.mu.
func (s *Server) renderLicenseProperty(object *directoryObject, name string) (key string, value any, ok bool) {
	switch {
	case object.kind == kindGroup && strings.EqualFold(name, "assignedLicenses"):
		licenses := make([]any, len(object.licenses))
		for i, license := range object.licenses {
			licenses[i] = license.render()
		}
		return "assignedLicenses", licenses, true
	case object.kind == kindUser && strings.EqualFold(name, "licenseAssignmentStates"):
		states, _ := s.licenseStates()
		rendered := make([]any, 0, len(states[object.id()]))
		for _, state := range states[object.id()] {
			rendered = append(rendered, state.render())
		}
		return "licenseAssignmentStates", rendered, true
	}
	return "", nil, false
}

// LicenseStates returns a user's licence assignments as Graph would show them.
func (s *Server) LicenseStates(userID string) []LicenseAssignmentState {
	s.mu.Lock()
	defer s.mu.Unlock()
	states, _ := s.licenseStates()
	return states[strings.ToLower(userID)]
}

// GroupLicenses returns the SKU ids a group gives its members, in the order assigned.
func (s *Server) GroupLicenses(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, groupID)
	if !found {
		return nil
	}
	skus := make([]string, len(group.licenses))
	for i, license := range group.licenses {
		skus[i] = license.skuID
	}
	return skus
}

// ConsumedUnits returns how many units of a SKU are assigned.
func (s *Server) ConsumedUnits(skuID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, consumed := s.licenseStates()
	return consumed[skuID]
}
