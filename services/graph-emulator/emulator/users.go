package emulator

import (
	"maps"
	"net/http"
)

// createUser handles POST /users.
func (s *Server) createUser(c *call) error {
	props, err := decodeObject(c.request)
	if err != nil {
		return err
	}
	if err := s.validation(kindUser, true).user(props); err != nil {
		return err
	}
	principalName := props.String("userPrincipalName")
	// The password is checked and hashed, never kept; Graph does not return passwordProfile either.
	profile, _ := props["passwordProfile"].(map[string]any)
	delete(props, "passwordProfile")
	delete(props, "id")

	s.mu.Lock()
	if s.directory.principalNameTaken(principalName, "") {
		s.mu.Unlock()
		return duplicateProperty("userPrincipalName")
	}
	user := s.directory.add(kindUser, props)
	user.sessionsValidFrom = s.now()
	user.setPasswordProfile(profile, s.now())
	created := user.props.clone()
	s.faults.noteCreated(created.ID())
	s.mu.Unlock()

	created["@odata.context"] = contextURL("users", nil, true)
	return s.writeJSON(c, http.StatusCreated, created)
}

// getUser handles GET /users/{id or userPrincipalName}.
func (s *Server) getUser(c *call) error {
	selection, err := parseEntitySelection(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	user, found := s.directory.lookupUser(c.param("user"))
	found = found && !s.faults.lagging(user)
	var rendered Object
	if found {
		rendered = s.render(user, selection, false)
	}
	s.mu.Unlock()
	if !found {
		return resourceNotFound(c.param("user"))
	}
	rendered["@odata.context"] = contextURL("users", selection, true)
	return s.writeJSON(c, http.StatusOK, rendered)
}

// updateUser handles PATCH /users/{id or userPrincipalName}: given properties replace stored
// ones, null removes one, and complex properties are replaced whole.
func (s *Server) updateUser(c *call) error {
	changes, err := decodeObject(c.request)
	if err != nil {
		return err
	}
	if err := s.validation(kindUser, false).user(changes); err != nil {
		return err
	}
	newPrincipalName, renaming := changes["userPrincipalName"].(string)
	profile, _ := changes["passwordProfile"].(map[string]any)
	_, passwordChanged := profile["password"]
	delete(changes, "passwordProfile")
	delete(changes, "id")

	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found {
		return resourceNotFound(c.param("user"))
	}
	if renaming {
		if s.directory.principalNameTaken(newPrincipalName, user.id()) {
			return duplicateProperty("userPrincipalName")
		}
		s.directory.renameUser(user, newPrincipalName)
	}
	// onPremisesExtensionAttributes is updated attribute by attribute, as Graph documents ("these
	// properties can be set during creation or update"): the attributes named change, null clears
	// one, the others stay.
	if value, given := changes["onPremisesExtensionAttributes"].(map[string]any); given {
		stored, _ := user.props["onPremisesExtensionAttributes"].(map[string]any)
		merged := maps.Clone(stored)
		if merged == nil {
			merged = map[string]any{}
		}
		merge(merged, value)
		delete(merged, "@odata.type")
		changes["onPremisesExtensionAttributes"] = merged
	}
	user.setPasswordProfile(profile, s.now())
	s.directory.update(user, changes)
	if passwordChanged {
		// Graph invalidates the sessions issued before a password change.
		user.sessionsValidFrom = s.now()
	}
	return s.writeNoContent(c)
}

// deleteUser handles DELETE /users/{id or userPrincipalName}: the user leaves every group and
// goes to the deleted items, from where it can be restored (Graph keeps it 30 days).
func (s *Server) deleteUser(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found {
		return resourceNotFound(c.param("user"))
	}
	s.directory.softDelete(user)
	return s.writeNoContent(c)
}

// listDeletedUsers handles GET /directory/deletedItems/microsoft.graph.user (or graph.user).
func (s *Server) listDeletedUsers(c *call) error {
	if cast := c.param("cast"); cast != "microsoft.graph.user" && cast != "graph.user" {
		return newAPIError(http.StatusBadRequest, CodeBadRequest, "Resource not found for the segment '%s'.", cast)
	}
	query, err := parseCollectionQuery(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	items := make([]collectionItem, len(s.directory.deletedUsers))
	for i, user := range s.directory.deletedUsers {
		items[i] = collectionItem{sequence: user.sequence, object: user}
	}
	page := s.collectionPage(c.request, "directory/deletedItems/microsoft.graph.user", items, query, false)
	s.mu.Unlock()
	return s.writeJSON(c, http.StatusOK, page)
}

// restoreDeleted handles POST /directory/deletedItems/{id}/restore.
func (s *Server) restoreDeleted(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.restore(c.param("object"))
	if !found {
		return resourceNotFound(c.param("object"))
	}
	rendered := user.props.clone()
	rendered["@odata.context"] = contextURL("directoryObjects", nil, true)
	rendered["@odata.type"] = "#microsoft.graph.user"
	return s.writeJSON(c, http.StatusOK, rendered)
}

// listUsers handles GET /users.
func (s *Server) listUsers(c *call) error {
	query, err := parseCollectionQuery(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	items := make([]collectionItem, 0, len(s.directory.users))
	for _, user := range s.directory.users {
		if !s.faults.lagging(user) { // advanced queries are eventually consistent
			items = append(items, collectionItem{sequence: user.sequence, object: user})
		}
	}
	page := s.collectionPage(c.request, "users", items, query, false)
	s.mu.Unlock()
	return s.writeJSON(c, http.StatusOK, page)
}

// decodeObject reads a request body into properties without annotations.
func decodeObject(r *http.Request) (Object, error) {
	body, err := readJSONObject(r)
	if err != nil {
		return nil, err
	}
	return objectFromBody(body)
}

// merge applies PATCH semantics to stored.
func merge(stored, changes Object) {
	for name, value := range changes {
		key, found := lookupKey(stored, name)
		if !found {
			key = name
		}
		if value == nil {
			delete(stored, key)
			continue
		}
		stored[key] = value
	}
}
