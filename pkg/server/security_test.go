package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/envconfig"
)

// startServer runs srv until the test ends.
func startServer(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestAdminRoutes(t *testing.T) {
	authCfg, tokens := authtest.RoleTokens(t)
	srv, err := New(Config{Name: "entra-writer", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Auth: authCfg},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, _ := auth.PrincipalFrom(r.Context())
		_, _ = io.WriteString(w, principal.TokenName)
	})
	srv.HandleAdmin("GET /v1/things", auth.Viewer, ok)
	srv.HandleAdmin("POST /v1/things/act", auth.Operator, ok)
	startServer(t, srv)
	admin := "http://" + srv.AdminAddr().String()
	open := "http://" + srv.HTTPAddr().String()

	tests := []struct {
		name, method, url string
		token             auth.Role
		want              int
		wantBody          string
	}{
		{"health stays open", "GET", open + "/healthz", "", http.StatusOK, "ok\n"},
		{"metrics stay open", "GET", open + "/metrics", "", http.StatusOK, ""},
		{"admin routes are not on the open port", "GET", open + "/v1/things", auth.Admin, http.StatusNotFound, ""},
		{"read without credentials", "GET", admin + "/v1/things", "", http.StatusUnauthorized, ""},
		{"read as viewer", "GET", admin + "/v1/things", auth.Viewer, http.StatusOK, "viewer"},
		{"act without credentials", "POST", admin + "/v1/things/act", "", http.StatusUnauthorized, ""},
		{"act as viewer", "POST", admin + "/v1/things/act", auth.Viewer, http.StatusForbidden, ""},
		{"act as operator", "POST", admin + "/v1/things/act", auth.Operator, http.StatusOK, "operator"},
		{"act as admin", "POST", admin + "/v1/things/act", auth.Admin, http.StatusOK, "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tokens[tt.token])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestAuthenticatedRoutesOnTheOpenListener(t *testing.T) {
	authCfg, tokens := authtest.RoleTokens(t)
	srv, err := New(Config{Name: "hr-ingest", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Auth: authCfg}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleAuthenticated("POST /v1/dry-run/{source}", auth.Viewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, _ := auth.PrincipalFrom(r.Context())
		_, _ = io.WriteString(w, principal.TokenName+" "+r.PathValue("source"))
	}))
	srv.Handle("POST /v1/sources/{source}/events", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "signed elsewhere")
	}))
	startServer(t, srv)
	open := "http://" + srv.HTTPAddr().String()

	tests := []struct {
		name, url string
		token     string
		want      int
		wantBody  string
	}{
		{"without credentials", open + "/v1/dry-run/workday", "", http.StatusUnauthorized, ""},
		{"with an unknown token", open + "/v1/dry-run/workday", "not-a-token-of-anyone", http.StatusUnauthorized, ""},
		{"as viewer", open + "/v1/dry-run/workday", tokens[auth.Viewer], http.StatusOK, "viewer workday"},
		{"as operator", open + "/v1/dry-run/workday", tokens[auth.Operator], http.StatusOK, "operator workday"},
		{"a route with its own authentication is untouched", open + "/v1/sources/workday/events", "", http.StatusOK, "signed elsewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, nil)
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
				t.Fatalf("status = %d %q, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestRunRefusesDoorsOutsideTheTable(t *testing.T) {
	t.Run("gRPC method without a rule", func(t *testing.T) {
		srv, err := New(Config{Name: "x", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv.GRPC().RegisterService(&grpc.ServiceDesc{
			ServiceName: "test.Forgotten",
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: "Do", Handler: func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
				return nil, nil
			}}},
		}, struct{}{})
		err = srv.Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "/test.Forgotten/Do") {
			t.Errorf("Run = %v, want an error naming /test.Forgotten/Do", err)
		}
	})
	t.Run("admin route without ADMIN_ADDR", func(t *testing.T) {
		srv, err := New(Config{Name: "x", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv.HandleAdmin("POST /v1/act", auth.Operator, http.NotFoundHandler())
		if err := srv.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "ADMIN_ADDR") {
			t.Errorf("Run = %v, want an error naming ADMIN_ADDR", err)
		}
	})
}

func TestNewClosesListenersWhenStartUpFails(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr := free.Addr().String()
	free.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := New(Config{Name: "x", GRPCAddr: grpcAddr, HTTPAddr: "127.0.0.1:0", AdminAddr: busy.Addr().String()}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New succeeded on a busy admin address")
	}
	again, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		t.Fatalf("the gRPC address is still held after New failed: %v", err)
	}
	again.Close()
}

func TestMutualTLS(t *testing.T) {
	pki := authtest.NewPKI(t)
	authCfg, tokens := authtest.RoleTokens(t)
	srv, err := New(Config{
		Name: "org-model", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Auth: authCfg,
		TLS: TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleAdmin("GET /v1/things", auth.Viewer, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	startServer(t, srv)

	check := func(clientTLS *tls.Config) error {
		conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err
	}
	withoutCert := &tls.Config{RootCAs: pki.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if err := check(withoutCert); status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC without a client certificate: %v, want the handshake refused (Unavailable)", err)
	}
	withCert := withoutCert.Clone()
	withCert.Certificates = []tls.Certificate{pki.Client}
	if err := check(withCert); err != nil {
		t.Errorf("gRPC with a client certificate: %v", err)
	}
	if err := check(&tls.Config{RootCAs: pki.Pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pki.Stranger}, MinVersion: tls.VersionTLS12}); status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC with a certificate from another CA: %v, want refused", err)
	}

	adminGet := func(clientTLS *tls.Config) (*http.Response, error) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+srv.AdminAddr().String()+"/v1/things", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[auth.Viewer])
		return client.Do(req)
	}
	if resp, err := adminGet(withoutCert); err == nil {
		resp.Body.Close()
		t.Errorf("admin HTTPS without a client certificate answered %d", resp.StatusCode)
	}
	resp, err := adminGet(withCert)
	if err != nil {
		t.Fatalf("admin HTTPS with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("admin HTTPS with a client certificate = %d", resp.StatusCode)
	}
}

func TestConfigFromEnvTLS(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"plaintext", nil, ""},
		{"certificate without key", map[string]string{"GRPC_TLS_CERT_FILE": "c.pem"}, "GRPC_TLS_CERT_FILE: must be set together with GRPC_TLS_KEY_FILE"},
		{"client CA without TLS", map[string]string{"GRPC_TLS_CLIENT_CA_FILE": "ca.pem"}, "GRPC_TLS_CLIENT_CA_FILE: needs GRPC_TLS_CERT_FILE"},
		{"bad auth", map[string]string{"ORGSYNC_AUTH_OIDC_ISSUER": "https://idp.example.com"}, "ORGSYNC_AUTH_OIDC_AUDIENCE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envconfig.New(envconfig.Map(tt.vars))
			ConfigFromEnv("x", env, ":1", ":2")
			err := env.Err()
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

func TestHTTPTimeoutsOnEveryListener(t *testing.T) {
	srv, err := New(Config{Name: "x", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		HTTPTimeouts: HTTPTimeouts{Read: 5 * time.Second}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	type timeouts struct{ ReadHeader, Read, Write, Idle time.Duration }
	of := func(s *http.Server) timeouts {
		return timeouts{s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout}
	}
	if diff := cmp.Diff(timeouts{10 * time.Second, 5 * time.Second, 2 * time.Minute, 2 * time.Minute}, of(srv.httpServer)); diff != "" {
		t.Errorf("HTTP listener timeouts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(timeouts{10 * time.Second, 5 * time.Second, 10 * time.Minute, 2 * time.Minute}, of(srv.adminServer)); diff != "" {
		t.Errorf("admin listener timeouts (-want +got):\n%s", diff)
	}
}
