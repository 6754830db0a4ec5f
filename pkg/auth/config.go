package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/orgsync/orgsync/pkg/envconfig"
)

// DefaultRolesClaim is the claim roles are read from when ORGSYNC_AUTH_OIDC_ROLES_CLAIM is unset
// (Entra ID app roles and Keycloak client roles mapped to "roles" both use it).
const DefaultRolesClaim = "roles"

// DefaultClockSkew is how long after "exp" a token is still accepted, for clocks slightly apart.
const DefaultClockSkew = 30 * time.Second

// Config says how callers authenticate. The zero value authenticates nobody (fail closed).
type Config struct {
	// Issuer is the OIDC issuer URL (ORGSYNC_AUTH_OIDC_ISSUER); its discovery document names the
	// JWKS. Empty turns OIDC off.
	Issuer string
	// Audience is the "aud" a token must carry (ORGSYNC_AUTH_OIDC_AUDIENCE), required with Issuer.
	Audience string
	// RolesClaim is the claim holding the caller's roles, a string or a list; a dotted path
	// reaches into objects ("realm_access.roles"). Default "roles".
	RolesClaim string
	// RoleMap maps claim values (e.g. group object ids) to roles (ORGSYNC_AUTH_OIDC_ROLE_MAP,
	// "claimValue=role,..."). When it is set only mapped values grant roles; when it is empty a
	// claim value that is a role name grants that role.
	RoleMap map[string][]Role
	// ClockSkew is the leeway on expiry; default DefaultClockSkew.
	ClockSkew time.Duration
	// TokensFile is the static API tokens file (ORGSYNC_AUTH_TOKENS_FILE): YAML or JSON with a
	// name, the SHA-256 of the token and roles per token. Empty turns static tokens off.
	TokensFile string
}

// Enabled reports whether any way to authenticate is configured.
func (c Config) Enabled() bool { return c.Issuer != "" || c.TokensFile != "" }

// ConfigFromEnv reads ORGSYNC_AUTH_OIDC_ISSUER, ORGSYNC_AUTH_OIDC_AUDIENCE,
// ORGSYNC_AUTH_OIDC_ROLES_CLAIM, ORGSYNC_AUTH_OIDC_ROLE_MAP and ORGSYNC_AUTH_TOKENS_FILE, and
// records every problem on env, named by its variable.
func ConfigFromEnv(env *envconfig.Env) Config {
	cfg := Config{
		Issuer:     env.String("ORGSYNC_AUTH_OIDC_ISSUER", ""),
		Audience:   env.String("ORGSYNC_AUTH_OIDC_AUDIENCE", ""),
		RolesClaim: env.String("ORGSYNC_AUTH_OIDC_ROLES_CLAIM", DefaultRolesClaim),
		TokensFile: env.String("ORGSYNC_AUTH_TOKENS_FILE", ""),
		ClockSkew:  DefaultClockSkew,
	}
	if raw := env.String("ORGSYNC_AUTH_OIDC_ROLE_MAP", ""); raw != "" {
		roleMap, err := ParseRoleMap(raw)
		if err != nil {
			env.Fail("ORGSYNC_AUTH_OIDC_ROLE_MAP", err)
		}
		cfg.RoleMap = roleMap
	}
	if err := cfg.Validate(); err != nil {
		var named *varError
		for _, e := range unjoin(err) {
			if errors.As(e, &named) {
				env.Fail(named.name, named.err)
			} else {
				env.Fail("ORGSYNC_AUTH", e)
			}
		}
	}
	return cfg
}

// ParseRoleMap parses "claimValue=role,claimValue=role"; a claim value may appear more than once
// to grant several roles.
func ParseRoleMap(raw string) (map[string][]Role, error) {
	roleMap := map[string][]Role{}
	var errs []error
	for entry := range strings.SplitSeq(raw, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		value, roleName, ok := strings.Cut(entry, "=")
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			errs = append(errs, fmt.Errorf("entry %q is not claimValue=role", entry))
			continue
		}
		role, err := ParseRole(roleName)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry for %q: %w", value, err))
			continue
		}
		roleMap[value] = append(roleMap[value], role)
	}
	return roleMap, errors.Join(errs...)
}

// Validate checks the configuration and the tokens file, and names every problem by its variable.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer != "" {
		if err := checkIssuer(c.Issuer); err != nil {
			errs = append(errs, &varError{"ORGSYNC_AUTH_OIDC_ISSUER", err})
		}
		if c.Audience == "" {
			errs = append(errs, &varError{"ORGSYNC_AUTH_OIDC_AUDIENCE", errors.New("must be set with ORGSYNC_AUTH_OIDC_ISSUER: tokens for another audience must not be accepted")})
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > 5*time.Minute {
		errs = append(errs, &varError{"ORGSYNC_AUTH_CLOCK_SKEW", fmt.Errorf("%s is outside 0..5m", c.ClockSkew)})
	}
	if c.TokensFile != "" {
		if _, err := loadTokens(c.TokensFile); err != nil {
			errs = append(errs, &varError{"ORGSYNC_AUTH_TOKENS_FILE", err})
		}
	}
	return errors.Join(errs...)
}

// checkIssuer accepts https URLs, and http only on a loopback host (local stack and tests).
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
		return fmt.Errorf("%q: http is only allowed on a loopback host; use https", issuer)
	default:
		return fmt.Errorf("%q is not an https URL", issuer)
	}
}

// varError is a problem with one environment variable.
type varError struct {
	name string
	err  error
}

func (e *varError) Error() string { return e.name + ": " + e.err.Error() }
func (e *varError) Unwrap() error { return e.err }

func unjoin(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
}
