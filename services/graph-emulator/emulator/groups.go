package emulator

import (
	"net/http"
	"net/url"
	"strings"
)

// createGroup handles POST /groups.
func (s *Server) createGroup(c *call) error {
	props, err := decodeObject(c.request)
	if err != nil {
		return err
	}
	if err := s.validation(kindGroup, true).group(props); err != nil {
		return err
	}
	delete(props, "id")

	s.mu.Lock()
	created := s.directory.add(kindGroup, props).props.clone()
	s.faults.noteCreated(created.ID())
	s.mu.Unlock()

	created["@odata.context"] = contextURL("groups", nil, true)
	return s.writeJSON(c, http.StatusCreated, created)
}

// getGroup handles GET /groups/{id}.
func (s *Server) getGroup(c *call) error {
	selection, err := parseEntitySelection(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	found = found && !s.faults.lagging(group)
	var rendered Object
	if found {
		rendered = s.render(group, selection, false)
	}
	s.mu.Unlock()
	if !found {
		return resourceNotFound(c.param("group"))
	}
	rendered["@odata.context"] = contextURL("groups", selection, true)
	return s.writeJSON(c, http.StatusOK, rendered)
}

// updateGroup handles PATCH /groups/{id}, including "members@odata.bind": up to 20 member
// references added all or nothing — one that is already a member fails the whole request, as in
// Graph.
func (s *Server) updateGroup(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	bindIDs, binding, err := takeMemberBinds(body)
	if err != nil {
		return err
	}
	changes, err := objectFromBody(body)
	if err != nil {
		return err
	}
	if err := s.validation(kindGroup, false).group(changes); err != nil {
		return err
	}
	delete(changes, "id")

	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	if !found || s.faults.lagging(group) {
		return resourceNotFound(c.param("group"))
	}
	if binding {
		c.operation = OpMemberBind
		if err := s.checkBinds(group, bindIDs); err != nil {
			return err
		}
		for _, id := range bindIDs {
			s.directory.addMember(group, strings.ToLower(id))
		}
	}
	s.directory.update(group, changes)
	return s.writeNoContent(c)
}

// maxBindsPerRequest is Graph's limit of member references in one "members@odata.bind".
const maxBindsPerRequest = 20

// takeMemberBinds removes "members@odata.bind" from body and returns the referenced ids.
func takeMemberBinds(body map[string]any) ([]string, bool, error) {
	raw, present := body["members@odata.bind"]
	if !present {
		return nil, false, nil
	}
	delete(body, "members@odata.bind")
	references, ok := raw.([]any)
	if !ok {
		return nil, false, newAPIError(http.StatusBadRequest, CodeBadRequest, "'members@odata.bind' must be an array of object URLs.")
	}
	if len(references) > maxBindsPerRequest {
		return nil, false, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
			"A maximum of %d members can be added in a single request; this one has %d.", maxBindsPerRequest, len(references))
	}
	ids := make([]string, 0, len(references))
	for _, reference := range references {
		url, _ := reference.(string)
		id, err := referencedID(map[string]any{"@odata.id": url})
		if err != nil {
			return nil, false, err
		}
		ids = append(ids, id)
	}
	return ids, true, nil
}

// checkBinds refuses the whole bind if any reference is unknown or already a member.
func (s *Server) checkBinds(group *directoryObject, ids []string) error {
	seen := map[string]bool{}
	for _, id := range ids {
		member, found := s.directory.objects[strings.ToLower(id)]
		if !found || s.faults.lagging(member) {
			return resourceNotFound(id)
		}
		if _, present := group.memberIndex[member.id()]; present || seen[member.id()] {
			return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
				"One or more added object references already exist for the following modified properties: 'members'.")
		}
		seen[member.id()] = true
	}
	return nil
}

// deleteGroup handles DELETE /groups/{id}; the group also leaves every group it was nested in.
func (s *Server) deleteGroup(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	if !found {
		return resourceNotFound(c.param("group"))
	}
	s.directory.remove(group)
	return s.writeNoContent(c)
}

// listGroups handles GET /groups.
func (s *Server) listGroups(c *call) error {
	query, err := parseCollectionQuery(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	items := make([]collectionItem, 0, len(s.directory.groups))
	for _, group := range s.directory.groups {
		if !s.faults.lagging(group) { // advanced queries are eventually consistent
			items = append(items, collectionItem{sequence: group.sequence, object: group})
		}
	}
	page := s.collectionPage(c.request, "groups", items, query, false)
	s.mu.Unlock()
	return s.writeJSON(c, http.StatusOK, page)
}

// addMember handles POST /groups/{id}/members/$ref with {"@odata.id": ".../directoryObjects/{id}"}.
func (s *Server) addMember(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	memberID, err := referencedID(body)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	if !found || s.faults.lagging(group) {
		return resourceNotFound(c.param("group"))
	}
	member, found := s.directory.objects[strings.ToLower(memberID)]
	if !found || s.faults.lagging(member) {
		return resourceNotFound(memberID)
	}
	if !s.directory.addMember(group, member.id()) {
		return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
			"One or more added object references already exist for the following modified properties: 'members'.")
	}
	return s.writeNoContent(c)
}

// referencedID extracts the object id from a reference body: the last segment of the
// "@odata.id" URL, whatever its scheme, host and path.
func referencedID(body map[string]any) (string, error) {
	reference, _ := body["@odata.id"].(string)
	if reference == "" {
		return "", newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
			"The request body must carry the member's URL in '@odata.id', such as https://graph.microsoft.com/v1.0/directoryObjects/{id}.")
	}
	path := reference
	if parsed, err := url.Parse(reference); err == nil {
		path = parsed.Path
	}
	segments, err := pathSegments(path)
	if err != nil || len(segments) == 0 {
		return "", newAPIError(http.StatusBadRequest, CodeRequestBadRequest, "Invalid object identifier '%s'.", reference)
	}
	return segments[len(segments)-1], nil
}

// removeMember handles DELETE /groups/{id}/members/{memberId}/$ref.
func (s *Server) removeMember(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	if !found {
		return resourceNotFound(c.param("group"))
	}
	memberID := strings.ToLower(c.param("member"))
	if _, exists := s.directory.objects[memberID]; !exists {
		return resourceNotFound(c.param("member"))
	}
	if !s.directory.removeMember(group, memberID) {
		return newAPIError(http.StatusNotFound, CodeResourceNotFound,
			"One or more removed object references do not exist for the following modified properties: 'members'.")
	}
	return s.writeNoContent(c)
}

// listMembers handles GET /groups/{id}/members; each member carries its "@odata.type".
func (s *Server) listMembers(c *call) error {
	query, err := parseCollectionQuery(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	group, found := s.directory.lookup(kindGroup, c.param("group"))
	var page Object
	if found {
		items := make([]collectionItem, 0, len(group.members))
		for _, member := range group.members {
			items = append(items, collectionItem{sequence: member.sequence, object: s.directory.objects[member.memberID]})
		}
		page = s.collectionPage(c.request, "directoryObjects", items, query, true)
	}
	s.mu.Unlock()
	if !found {
		return resourceNotFound(c.param("group"))
	}
	return s.writeJSON(c, http.StatusOK, page)
}
