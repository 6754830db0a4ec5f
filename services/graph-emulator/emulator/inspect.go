package emulator

import "strings"

// The methods below let a test look into the directory without going through HTTP. They are
// not counted in Stats, and every Object they return is a deep copy.

// User returns the user with the given id or userPrincipalName.
func (s *Server) User(idOrPrincipalName string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(idOrPrincipalName)
	if !found {
		return nil, false
	}
	return user.props.clone(), true
}

// UserByEmployeeID returns the first user, in creation order, whose employeeId equals employeeID.
func (s *Server) UserByEmployeeID(employeeID string) (Object, bool) {
	return s.firstObject(kindUser, func(props Object) bool { return props.String("employeeId") == employeeID })
}

// Users returns every user in creation order.
func (s *Server) Users() []Object {
	return s.allObjects(kindUser)
}

// Group returns the group with the given id.
func (s *Server) Group(id string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, id)
	if !found {
		return nil, false
	}
	return group.props.clone(), true
}

// GroupByDisplayName returns the first group, in creation order, with displayName name.
// Graph does not keep group display names unique, so neither does the emulator.
func (s *Server) GroupByDisplayName(name string) (Object, bool) {
	return s.firstObject(kindGroup, func(props Object) bool { return props.String("displayName") == name })
}

// GroupByMailNickname returns the first group, in creation order, whose mailNickname equals
// nickname, ignoring case.
func (s *Server) GroupByMailNickname(nickname string) (Object, bool) {
	return s.firstObject(kindGroup, func(props Object) bool { return strings.EqualFold(props.String("mailNickname"), nickname) })
}

// Groups returns every group in creation order.
func (s *Server) Groups() []Object {
	return s.allObjects(kindGroup)
}

// Members returns the ids of the direct members of a group, users and groups alike, in the
// order they were added; it returns nil for an unknown group.
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, found := s.directory.lookup(kindGroup, groupID)
	if !found {
		return nil
	}
	memberIDs := make([]string, len(group.members))
	for i, member := range group.members {
		memberIDs[i] = member.memberID
	}
	return memberIDs
}

func (s *Server) firstObject(kind objectKind, matches func(Object) bool) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, object := range s.directory.ofKind(kind) {
		if matches(object.props) {
			return object.props.clone(), true
		}
	}
	return nil, false
}

func (s *Server) allObjects(kind objectKind) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	objects := s.directory.ofKind(kind)
	copies := make([]Object, len(objects))
	for i, object := range objects {
		copies[i] = object.props.clone()
	}
	return copies
}
