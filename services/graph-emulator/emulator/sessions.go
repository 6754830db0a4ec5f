package emulator

import (
	"net/http"
	"time"
)

// OpRevokeSessions counts POST /users/{id}/revokeSignInSessions.
const OpRevokeSessions = "user.revokeSignInSessions"

// sessionsValidFrom is the user property revokeSignInSessions resets: "Any refresh tokens or
// sessions tokens (session cookies) issued before this time are invalid" (Graph's user
// resource; read-only, returned only on $select).
const sessionsValidFrom = "signInSessionsValidFromDateTime"

func (s *Server) sessionRoutes() []route {
	return []route{
		newRoute(http.MethodPost, "users/{user}/revokeSignInSessions", OpRevokeSessions, s.revokeSignInSessions),
	}
}

// revokeSignInSessions handles POST /users/{id | userPrincipalName}/revokeSignInSessions as Graph
// documents it: the user's signInSessionsValidFromDateTime becomes the current date-time, and the
// answer is 200 with {"value": true}; an unknown user is 404.
func (s *Server) revokeSignInSessions(c *call) error {
	s.mu.Lock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found || s.faults.lagging(user) {
		s.mu.Unlock()
		return resourceNotFound(c.param("user"))
	}
	user.sessionsValidFrom = s.now()
	s.mu.Unlock()
	return s.writeJSON(c, http.StatusOK, Object{"@odata.context": metadataURL + "Edm.Boolean", "value": true})
}

// renderSessionsValidFrom is a user's signInSessionsValidFromDateTime as Graph writes a
// DateTimeOffset, nil when unset.
func renderSessionsValidFrom(user *directoryObject) any {
	if user.sessionsValidFrom.IsZero() {
		return nil
	}
	return user.sessionsValidFrom.UTC().Format(time.RFC3339Nano)
}

// SignInSessionsValidFrom returns a user's signInSessionsValidFromDateTime: sessions issued
// before it are invalid. ok is false for an unknown user.
func (s *Server) SignInSessionsValidFrom(idOrPrincipalName string) (validFrom time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(idOrPrincipalName)
	if !found {
		return time.Time{}, false
	}
	return user.sessionsValidFrom, true
}

// SignInSessionValid reports whether a sign-in session (a refresh token or session cookie) the
// user was issued at issuedAt would still be accepted: the user exists, its account is enabled,
// and the session is not older than signInSessionsValidFromDateTime.
func (s *Server) SignInSessionValid(idOrPrincipalName string, issuedAt time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(idOrPrincipalName)
	if !found {
		return false
	}
	if enabled, _ := user.props["accountEnabled"].(bool); !enabled {
		return false
	}
	return !issuedAt.Before(user.sessionsValidFrom)
}
