package auth_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
)

// credentials are the callers every door is tried with.
type credentials struct {
	issuer *authtest.Issuer
	static map[auth.Role]string
}

func newAuthorizer(t *testing.T) (*auth.Authorizer, credentials) {
	t.Helper()
	issuer := authtest.NewIssuer(t)
	staticCfg, static := authtest.RoleTokens(t)
	cfg := issuer.Config()
	cfg.TokensFile = staticCfg.TokensFile
	return auth.NewAuthorizer(newVerifier(t, cfg), nil), credentials{issuer: issuer, static: static}
}

func TestGRPCInterceptors(t *testing.T) {
	authorizer, creds := newAuthorizer(t)
	// The health service stands in for any service: Check needs viewer, Watch (a stream) needs
	// operator, List is missing from the table.
	authorizer.Allow(auth.Rules{
		healthpb.Health_Check_FullMethodName: auth.Viewer,
		healthpb.Health_Watch_FullMethodName: auth.Operator,
	})
	var seen []auth.Principal
	grpcServer := grpc.NewServer(
		grpc.ChainUnaryInterceptor(authorizer.UnaryInterceptor(), func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if p, ok := auth.PrincipalFrom(ctx); ok {
				seen = append(seen, p)
			}
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(authorizer.StreamInterceptor()),
	)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = grpcServer.Serve(listener) }()
	t.Cleanup(grpcServer.Stop)
	conn, err := grpc.NewClient(listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)

	check := func(ctx context.Context) error {
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	watch := func(ctx context.Context) error {
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	list := func(ctx context.Context) error {
		_, err := client.List(ctx, &healthpb.HealthListRequest{})
		return err
	}
	bearer := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	}
	tests := []struct {
		name string
		call func(context.Context) error
		ctx  context.Context
		want codes.Code
	}{
		{"unary without credentials", check, t.Context(), codes.Unauthenticated},
		{"unary with a wrong token", check, bearer("orgsync_wrong"), codes.Unauthenticated},
		{"unary with a token holding no role", check, bearer(creds.issuer.Token("nobody")), codes.PermissionDenied},
		{"unary with viewer (OIDC)", check, bearer(creds.issuer.Token("user-1", auth.Viewer)), codes.OK},
		{"unary with viewer (static)", check, bearer(creds.static[auth.Viewer]), codes.OK},
		{"unary with approver includes viewer", check, bearer(creds.static[auth.Approver]), codes.OK},
		{"stream without credentials", watch, t.Context(), codes.Unauthenticated},
		{"stream with viewer", watch, bearer(creds.static[auth.Viewer]), codes.PermissionDenied},
		{"stream with approver", watch, bearer(creds.static[auth.Approver]), codes.PermissionDenied},
		{"stream with operator", watch, bearer(creds.static[auth.Operator]), codes.OK},
		{"stream with admin", watch, bearer(creds.static[auth.Admin]), codes.OK},
		{"missing from the table, no credentials", list, t.Context(), codes.Unauthenticated},
		{"missing from the table, admin", list, bearer(creds.static[auth.Admin]), codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call(tt.ctx)); got != tt.want {
				t.Errorf("code = %s, want %s", got, tt.want)
			}
		})
	}
	if len(seen) == 0 || seen[0].Subject != "user-1" || seen[0].Issuer != creds.issuer.URL() {
		t.Errorf("principals seen by the handler: %+v, want user-1 from the issuer first", seen)
	}
}

func TestHTTPMiddleware(t *testing.T) {
	authorizer, creds := newAuthorizer(t)
	mux := http.NewServeMux()
	var principal auth.Principal
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, _ = auth.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte("done"))
	})
	mux.Handle("GET /v1/things", handler)
	mux.Handle("POST /v1/things/act", handler)
	mux.Handle("POST /v1/forgotten", handler)
	mux.Handle("GET /open", handler)
	authorizer.Allow(auth.Rules{"GET /v1/things": auth.Viewer, "POST /v1/things/act": auth.Operator, "GET /open": auth.Public})
	server := httptest.NewServer(authorizer.Middleware(mux))
	t.Cleanup(server.Close)

	tests := []struct {
		name, method, path, token string
		want                      int
		wantAuthenticate          string
	}{
		{"public route", "GET", "/open", "", http.StatusOK, ""},
		{"no credentials", "GET", "/v1/things", "", http.StatusUnauthorized, `Bearer realm="orgsync"`},
		{"wrong token", "GET", "/v1/things", "orgsync_wrong", http.StatusUnauthorized, `Bearer realm="orgsync", error="invalid_token"`},
		{"expired token", "GET", "/v1/things", creds.issuer.Sign(map[string]any{"iss": creds.issuer.URL(), "aud": authtest.Audience, "sub": "u", "exp": 1}), http.StatusUnauthorized, `Bearer realm="orgsync", error="invalid_token"`},
		{"no role", "GET", "/v1/things", creds.issuer.Token("nobody"), http.StatusForbidden, ""},
		{"viewer reads", "GET", "/v1/things", creds.static[auth.Viewer], http.StatusOK, ""},
		{"viewer may not act", "POST", "/v1/things/act", creds.static[auth.Viewer], http.StatusForbidden, ""},
		{"approver may not act", "POST", "/v1/things/act", creds.static[auth.Approver], http.StatusForbidden, ""},
		{"operator acts", "POST", "/v1/things/act", creds.issuer.Token("ops", auth.Operator), http.StatusOK, ""},
		{"route missing from the table, no credentials", "POST", "/v1/forgotten", "", http.StatusUnauthorized, `Bearer realm="orgsync"`},
		{"route missing from the table, admin", "POST", "/v1/forgotten", creds.static[auth.Admin], http.StatusForbidden, ""},
		{"unknown route, no credentials", "GET", "/v1/nothing", "", http.StatusUnauthorized, `Bearer realm="orgsync"`},
		{"unknown route, admin", "GET", "/v1/nothing", creds.static[auth.Admin], http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, server.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantAuthenticate {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantAuthenticate)
			}
			if tt.token != "" && strings.Contains(string(body), tt.token) {
				t.Error("the answer repeats the token")
			}
		})
	}
	if principal.Subject != "ops" {
		t.Errorf("handler saw %+v, want the operator's principal last", principal)
	}
}
