package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// passwordState is what the emulator keeps of a user's passwordProfile: a salted hash of the
// password (enough for a test to check that a password it was given is the one set, without the
// emulator holding it), when it was set, and the profile's flags. Graph never returns the
// password, and the emulator renders none of this: tests read it through PasswordProfile and
// PasswordIs.
type passwordState struct {
	salt                                 [16]byte
	hash                                 [sha256.Size]byte
	setAt                                time.Time
	changes                              int
	forceChangePasswordNextSignIn        bool
	forceChangePasswordNextSignInWithMfa bool
}

func hashPassword(salt [16]byte, password string) [sha256.Size]byte {
	return sha256.Sum256(append(salt[:], password...))
}

// setPasswordProfile applies a validated passwordProfile of a create or PATCH body (nil: none):
// a password replaces the hash and resets both flags to what the body says (Graph's default:
// false), as a new password is a new profile; flags alone change only themselves.
func (o *directoryObject) setPasswordProfile(profile map[string]any, now time.Time) {
	if profile == nil {
		return
	}
	if o.password == nil {
		o.password = &passwordState{}
	}
	state := o.password
	if password, given := profile["password"].(string); given {
		rand.Read(state.salt[:]) // never fails (crypto/rand, Go 1.24+)
		state.hash = hashPassword(state.salt, password)
		state.setAt = now
		state.changes++
		state.forceChangePasswordNextSignIn, state.forceChangePasswordNextSignInWithMfa = false, false
	}
	if force, given := profile["forceChangePasswordNextSignIn"].(bool); given {
		state.forceChangePasswordNextSignIn = force
	}
	if force, given := profile["forceChangePasswordNextSignInWithMfa"].(bool); given {
		state.forceChangePasswordNextSignInWithMfa = force
	}
}

// PasswordProfile is what the emulator knows of a user's password, for tests: never the password.
type PasswordProfile struct {
	// SetAt is when the password was last set (the create, or a PATCH with a password), and
	// Changes how many times it was set, the create included.
	SetAt                                time.Time
	Changes                              int
	ForceChangePasswordNextSignIn        bool
	ForceChangePasswordNextSignInWithMfa bool
}

// PasswordProfile returns what the emulator knows of a user's password; ok is false for an
// unknown user or one created without a passwordProfile (only possible through inspection).
func (s *Server) PasswordProfile(idOrPrincipalName string) (profile PasswordProfile, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(idOrPrincipalName)
	if !found || user.password == nil {
		return PasswordProfile{}, false
	}
	p := user.password
	return PasswordProfile{SetAt: p.setAt, Changes: p.changes, ForceChangePasswordNextSignIn: p.forceChangePasswordNextSignIn,
		ForceChangePasswordNextSignInWithMfa: p.forceChangePasswordNextSignInWithMfa}, true
}

// PasswordIs reports whether candidate is the user's current password.
func (s *Server) PasswordIs(idOrPrincipalName, candidate string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(idOrPrincipalName)
	if !found || user.password == nil {
		return false
	}
	got := hashPassword(user.password.salt, candidate)
	return subtle.ConstantTimeCompare(got[:], user.password.hash[:]) == 1
}
