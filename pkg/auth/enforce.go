package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Rules maps a full gRPC method name ("/orgsync.v1.OrgModelService/Approve") or an HTTP route
// pattern ("POST /v1/dead-letters/replay") to the role it requires; Public opens it to everyone.
// A method or route missing from the table is refused.
type Rules map[string]Role

// Authorizer enforces Rules with a Verifier: the gRPC interceptors and the HTTP middleware share
// it. Add rules before serving; it is safe for concurrent use.
type Authorizer struct {
	verifier *Verifier
	logger   *slog.Logger

	mu    sync.RWMutex
	rules Rules
}

// NewAuthorizer returns an Authorizer with no rules (everything refused). A nil verifier
// authenticates nobody.
func NewAuthorizer(verifier *Verifier, logger *slog.Logger) *Authorizer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{verifier: verifier, logger: logger, rules: Rules{}}
}

// Allow adds rules to the table; a later rule for the same method replaces the earlier one.
func (a *Authorizer) Allow(rules Rules) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for method, role := range rules {
		a.rules[method] = role
	}
}

// Rule returns the role a method or route requires, and whether it is in the table.
func (a *Authorizer) Rule(method string) (Role, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	role, ok := a.rules[method]
	return role, ok
}

// Missing returns the methods of the list that the table does not name, sorted.
func (a *Authorizer) Missing(methods []string) []string {
	var missing []string
	for _, method := range methods {
		if _, ok := a.Rule(method); !ok {
			missing = append(missing, method)
		}
	}
	sort.Strings(missing)
	return missing
}

// authorize authenticates token for method and checks the role. It returns the context with the
// principal, or an error wrapping ErrNoCredentials, ErrInvalidToken, ErrNotConfigured,
// ErrIssuerUnavailable or ErrPermissionDenied.
func (a *Authorizer) authorize(ctx context.Context, method, token string) (context.Context, error) {
	required, known := a.Rule(method)
	if known && required == Public {
		return ctx, nil
	}
	principal, err := a.verifier.verifyAny(ctx, token)
	if err != nil {
		return ctx, err
	}
	if !known {
		// A door that nobody put in the table is a programming error; refusing it keeps it shut.
		a.logger.ErrorContext(ctx, "refused a method missing from the authorisation table", "method", method)
		return ctx, fmt.Errorf("%w: %s is not in the authorisation table", ErrPermissionDenied, method)
	}
	if !principal.Has(required) {
		return ctx, fmt.Errorf("%w: %s requires role %s", ErrPermissionDenied, method, required)
	}
	return WithPrincipal(ctx, principal), nil
}

// grpcStatus turns an authorisation error into the gRPC status a client sees.
func grpcStatus(err error) error {
	switch {
	case errors.Is(err, ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrIssuerUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Unauthenticated, err.Error())
	}
}

func tokenFromMetadata(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, value := range md.Get("authorization") {
		if token := bearer(value); token != "" {
			return token
		}
	}
	return ""
}

// UnaryInterceptor enforces the table on unary calls.
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authorize(ctx, info.FullMethod, tokenFromMetadata(ctx))
		if err != nil {
			return nil, grpcStatus(err)
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor enforces the table on streaming calls (reflection, health watch).
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authorize(ss.Context(), info.FullMethod, tokenFromMetadata(ss.Context()))
		if err != nil {
			return grpcStatus(err)
		}
		return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
	}
}

// principalStream is a ServerStream whose context carries the principal.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

// Router finds the route pattern a request matches; *http.ServeMux is one.
type Router interface {
	Handler(r *http.Request) (http.Handler, string)
}

// Middleware enforces the table on the routes of router (keyed by their patterns, as registered)
// and then serves the request with router. 401 carries WWW-Authenticate: Bearer; 403 when the
// role is missing. A request matching no route gets the router's 404 or 405 once authenticated.
func (a *Authorizer) Middleware(router Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler, pattern := router.Handler(r)
		token := bearer(r.Header.Get("Authorization"))
		if pattern == "" {
			// No route: still authenticate, so that an anonymous caller learns nothing about routes.
			if _, err := a.verifier.verifyAny(r.Context(), token); err != nil {
				writeHTTPError(w, err)
				return
			}
			handler.ServeHTTP(w, r)
			return
		}
		ctx, err := a.authorize(r.Context(), pattern, token)
		if err != nil {
			writeHTTPError(w, err)
			return
		}
		handler.ServeHTTP(w, r.WithContext(ctx))
	})
}

// verifyAny authenticates without a role check; a nil Verifier authenticates nobody.
func (v *Verifier) verifyAny(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoCredentials
	}
	if v == nil {
		return Principal{}, ErrNotConfigured
	}
	return v.Verify(ctx, token)
}

func writeHTTPError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case errors.Is(err, ErrPermissionDenied):
		w.WriteHeader(http.StatusForbidden)
	case errors.Is(err, ErrIssuerUnavailable):
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		errorCode := "invalid_token"
		if errors.Is(err, ErrNoCredentials) {
			// RFC 6750 3.1: no error code when the request carried no credentials.
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgsync"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgsync", error="`+errorCode+`"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
	}
	_, _ = fmt.Fprintln(w, err.Error())
}
