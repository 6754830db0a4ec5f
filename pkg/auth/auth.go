// Package auth decides who may call orgsync's services and what they may do: it verifies OIDC
// bearer tokens (JWTs checked against the issuer's JWKS) and static API tokens (stored hashed),
// maps them to roles, and enforces a per-method table of required roles in one gRPC interceptor
// pair and one HTTP middleware.
//
// It is meant for orgsync's own services (org-model's gRPC API, the writers' admin endpoints,
// later the console), not for outside use.
//
// Fail closed: a method or route missing from the table is refused, and a Verifier with nothing
// configured (no issuer, no tokens file) refuses every protected call. Tokens, hashes and
// subjects never appear in errors or logs.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is what a caller may do. viewer < approver, operator < admin: approver and operator each
// include viewer, admin includes everything.
type Role string

// The roles, from least to most.
const (
	// Viewer reads: workers, groups, tree, explain, plan, pending, status, audit, dead letters.
	Viewer Role = "viewer"
	// Approver approves or rejects batches held by the mass-change guard.
	Approver Role = "approver"
	// Operator acts on the running system: drift reconcile, dead-letter replay.
	Operator Role = "operator"
	// Admin may do everything.
	Admin Role = "admin"
	// Public marks a method or route in a table as open to everyone (health); it is never a
	// caller's role.
	Public Role = "public"
)

// Roles lists the roles a caller can hold.
var Roles = []Role{Viewer, Approver, Operator, Admin}

// ParseRole returns the role named s (case-insensitive).
func ParseRole(s string) (Role, error) {
	role := Role(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Roles, role) {
		return "", fmt.Errorf("%w: %q (want one of viewer, approver, operator, admin)", ErrUnknownRole, s)
	}
	return role, nil
}

// includes reports whether holding r allows what required needs.
func (r Role) includes(required Role) bool {
	switch r {
	case Admin:
		return true
	case Approver, Operator:
		return required == r || required == Viewer
	case Viewer:
		return required == Viewer
	}
	return false
}

// Principal is an authenticated caller.
type Principal struct {
	// Subject is the token's "sub" (OIDC), or the static token's name.
	Subject string
	// Issuer is the OIDC issuer; empty for a static token.
	Issuer string
	// TokenName is the static token's name; empty for an OIDC token.
	TokenName string
	// Roles are the roles the caller holds.
	Roles []Role
}

// Has reports whether the principal may do what role requires.
func (p Principal) Has(role Role) bool {
	if role == Public {
		return true
	}
	for _, held := range p.Roles {
		if held.includes(role) {
			return true
		}
	}
	return false
}

// Kind says how the principal authenticated ("oidc" or "token"), safe to log.
func (p Principal) Kind() string {
	if p.TokenName != "" {
		return "token"
	}
	return "oidc"
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller the interceptor or middleware authenticated, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Errors the verifier and the enforcement return; none of them carries the token.
var (
	// ErrNoCredentials: the request carries no bearer token.
	ErrNoCredentials = errors.New("no credentials: send Authorization: Bearer <token>")
	// ErrInvalidToken: the token is not valid (signature, issuer, audience, expiry, unknown).
	ErrInvalidToken = errors.New("invalid token")
	// ErrNotConfigured: neither OIDC nor static tokens are configured, so nobody is let in.
	ErrNotConfigured = errors.New("authentication is not configured (ORGSYNC_AUTH_OIDC_ISSUER or ORGSYNC_AUTH_TOKENS_FILE); every protected call is refused")
	// ErrIssuerUnavailable: the OIDC issuer's discovery document or keys cannot be fetched.
	ErrIssuerUnavailable = errors.New("OIDC issuer unavailable")
	// ErrPermissionDenied: the caller is authenticated but lacks the role.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnknownRole: a role name in configuration is not one of the roles.
	ErrUnknownRole = errors.New("unknown role")
)
