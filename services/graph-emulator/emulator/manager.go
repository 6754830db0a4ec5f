package emulator

import (
	"net/http"
	"strings"
)

// setManager handles PUT /users/{id}/manager/$ref with {"@odata.id": ".../users/{managerId}"}.
func (s *Server) setManager(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	managerID, err := referencedID(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found || s.faults.lagging(user) {
		return resourceNotFound(c.param("user"))
	}
	manager, found := s.directory.lookup(kindUser, managerID)
	if !found || s.faults.lagging(manager) {
		return resourceNotFound(managerID)
	}
	if manager == user {
		return newAPIError(http.StatusBadRequest, CodeRequestBadRequest, "A user cannot be their own manager.")
	}
	s.directory.setManager(user, manager.id())
	return s.writeNoContent(c)
}

// getManager handles GET /users/{id}/manager; Graph answers 404 when no manager is set.
func (s *Server) getManager(c *call) error {
	selection, err := parseEntitySelection(c.request)
	if err != nil {
		return err
	}
	s.mu.Lock()
	user, found := s.directory.lookupUser(c.param("user"))
	var rendered Object
	if found {
		if manager, ok := s.directory.objects[s.directory.managers[user.id()]]; ok {
			rendered = s.render(manager, selection, true)
		}
	}
	s.mu.Unlock()
	if rendered == nil {
		return resourceNotFound("manager")
	}
	return s.writeJSON(c, http.StatusOK, rendered)
}

// removeManager handles DELETE /users/{id}/manager/$ref.
func (s *Server) removeManager(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found {
		return resourceNotFound(c.param("user"))
	}
	if !s.directory.clearManager(user) {
		return resourceNotFound("manager")
	}
	return s.writeNoContent(c)
}

// ManagerOf returns the id of a user's manager.
func (s *Server) ManagerOf(userID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	managerID, ok := s.directory.managers[strings.ToLower(userID)]
	return managerID, ok
}
