package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
)

func TestServerHealthReadinessAndShutdown(t *testing.T) {
	authCfg, tokens := authtest.RoleTokens(t)
	srv, err := New(Config{
		Name: "org-model", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		ReadinessInterval: 20 * time.Millisecond, Auth: authCfg,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	broken.Store(true)
	srv.AddCheck("jetstream", func(context.Context) error {
		if broken.Load() {
			return errors.New("unreachable")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	base := "http://" + srv.HTTPAddr().String()
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready: jetstream: unreachable\n" {
		t.Errorf("/readyz while broken = %d %q", code, body)
	}

	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	waitForStatus(t, health, healthpb.HealthCheckResponse_NOT_SERVING)
	broken.Store(false)
	waitForStatus(t, health, healthpb.HealthCheckResponse_SERVING)
	if _, err := reflectedServicesWith(t.Context(), conn); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without credentials: %v, want Unauthenticated", err)
	}
	viewer := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tokens[auth.Viewer])
	if services := reflectedServices(t, viewer, conn); !slices.Contains(services, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %v, want the health service among them", services)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("HTTP still serving after shutdown")
	}
}

// reflectedServices lists the services the server reports through gRPC reflection, as grpcurl
// would.
func reflectedServices(t *testing.T, ctx context.Context, conn *grpc.ClientConn) []string {
	t.Helper()
	names, err := reflectedServicesWith(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func reflectedServicesWith(ctx context.Context, conn *grpc.ClientConn) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an open stream would hold up the graceful stop
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	// A stream the server refused answers Send with io.EOF; its status comes from Recv.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitForStatus(t *testing.T, client healthpb.HealthClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "org-model"})
		if err == nil && resp.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health status = %v (err %v), want %v", resp.GetStatus(), err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
