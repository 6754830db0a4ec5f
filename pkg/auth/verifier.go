package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discoveryRetry is how long a failed OIDC discovery is remembered before the next call tries
// again, so that a flood of requests does not become a flood of requests to the issuer.
const discoveryRetry = 5 * time.Second

// Verifier turns a bearer token into a Principal. It is safe for concurrent use.
//
// OIDC discovery happens on the first OIDC token, not at start, so a service starts while its
// issuer is briefly unreachable; the issuer's keys are fetched again when a token names an
// unknown key id (rotation).
type Verifier struct {
	cfg    Config
	tokens []hashedToken
	client *http.Client
	now    func() time.Time

	mu          sync.Mutex
	idVerifier  *oidc.IDTokenVerifier
	lastFailure time.Time
	lastErr     error
}

// Option changes how a Verifier works; for tests.
type Option func(*Verifier)

// WithHTTPClient sets the client used for OIDC discovery and JWKS (default: a client with a 10 s
// timeout).
func WithHTTPClient(client *http.Client) Option { return func(v *Verifier) { v.client = client } }

// WithClock sets the clock expiry is checked against.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// NewVerifier validates cfg and loads the tokens file. With nothing configured it returns a
// Verifier that refuses every token with ErrNotConfigured.
func NewVerifier(cfg Config, opts ...Option) (*Verifier, error) {
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = DefaultRolesClaim
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, client: &http.Client{Timeout: 10 * time.Second}, now: time.Now}
	for _, opt := range opts {
		opt(v)
	}
	if cfg.TokensFile != "" {
		tokens, err := loadTokens(cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("ORGSYNC_AUTH_TOKENS_FILE: %w", err)
		}
		v.tokens = tokens
	}
	return v, nil
}

// Enabled reports whether any way to authenticate is configured.
func (v *Verifier) Enabled() bool { return v != nil && v.cfg.Enabled() }

// Verify checks a bearer token. A token with the shape of a JWT goes to OIDC, anything else is
// looked up among the static tokens. Errors wrap ErrNoCredentials, ErrInvalidToken,
// ErrNotConfigured or ErrIssuerUnavailable and never contain the token.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoCredentials
	}
	if !v.Enabled() {
		return Principal{}, ErrNotConfigured
	}
	if strings.Count(token, ".") == 2 {
		if v.cfg.Issuer == "" {
			return Principal{}, fmt.Errorf("%w: a JWT was sent but OIDC is not configured", ErrInvalidToken)
		}
		return v.verifyOIDC(ctx, token)
	}
	entry, ok := matchToken(v.tokens, token)
	if !ok {
		return Principal{}, fmt.Errorf("%w: not a known API token", ErrInvalidToken)
	}
	return Principal{Subject: entry.name, TokenName: entry.name, Roles: append([]Role(nil), entry.roles...)}, nil
}

func (v *Verifier) verifyOIDC(ctx context.Context, token string) (Principal, error) {
	idVerifier, err := v.oidcVerifier()
	if err != nil {
		return Principal{}, err
	}
	idToken, err := idVerifier.Verify(ctx, token)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Principal{}, fmt.Errorf("%w: expired", ErrInvalidToken)
		}
		return Principal{}, fmt.Errorf("%w: %s", ErrInvalidToken, strings.TrimPrefix(err.Error(), "oidc: "))
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	if idToken.Subject == "" {
		return Principal{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return Principal{Subject: idToken.Subject, Issuer: idToken.Issuer, Roles: v.rolesFrom(claims)}, nil
}

// oidcVerifier discovers the issuer once; a failure is remembered for discoveryRetry.
func (v *Verifier) oidcVerifier() (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.idVerifier != nil {
		return v.idVerifier, nil
	}
	if !v.lastFailure.IsZero() && v.now().Sub(v.lastFailure) < discoveryRetry {
		return nil, v.lastErr
	}
	// The provider keeps its context for fetching keys later, so it must outlive this request;
	// the client's timeout bounds the discovery (the lock is held for at most that long).
	provider, err := oidc.NewProvider(oidc.ClientContext(context.Background(), v.client), v.cfg.Issuer)
	if err != nil {
		v.lastFailure = v.now()
		v.lastErr = fmt.Errorf("%w: discovery: %v", ErrIssuerUnavailable, err)
		return nil, v.lastErr
	}
	skew := v.cfg.ClockSkew
	v.idVerifier = provider.Verifier(&oidc.Config{
		ClientID: v.cfg.Audience,
		Now:      func() time.Time { return v.now().Add(-skew) },
	})
	return v.idVerifier, nil
}

// rolesFrom reads the roles claim (a string or a list of strings) and maps its values.
func (v *Verifier) rolesFrom(claims map[string]any) []Role {
	var value any = claims
	for part := range strings.SplitSeq(v.cfg.RolesClaim, ".") {
		object, ok := value.(map[string]any)
		if !ok {
			return nil
		}
		value = object[part]
	}
	var values []string
	switch typed := value.(type) {
	case string:
		values = strings.Fields(typed)
	case []any:
		for _, item := range typed {
			if s, ok := item.(string); ok {
				values = append(values, s)
			}
		}
	}
	var roles []Role
	for _, claimValue := range values {
		if len(v.cfg.RoleMap) > 0 {
			roles = append(roles, v.cfg.RoleMap[claimValue]...)
			continue
		}
		if role, err := ParseRole(claimValue); err == nil {
			roles = append(roles, role)
		}
	}
	return roles
}

// bearer extracts the token from an Authorization header value.
func bearer(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
