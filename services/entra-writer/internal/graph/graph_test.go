package graph

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orgsync/orgsync/services/entra-writer/internal/budget"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestContract runs the Directory contract through the real msgraph-sdk-go client against the
// Graph emulator: the same suite the in-memory fake passes.
func TestContract(t *testing.T) {
	directorytest.RunContract(t, func(t *testing.T) (directorytest.Directory, directorytest.Members, directorytest.Managers) {
		emu := emulator.New(emulator.WithSubscribedSkus(emulator.SubscribedSku{SkuID: directorytest.ContractSkuID, PrepaidUnits: 1,
			ServicePlanIDs: []string{directorytest.ContractPlanA, directorytest.ContractPlanB}}))
		srv := httptest.NewServer(emu)
		t.Cleanup(srv.Close)
		client, err := New(srv.URL+"/v1.0", NoAuth())
		if err != nil {
			t.Fatal(err)
		}
		return client, emu.Members, emu.ManagerOf
	})
}

func TestPing(t *testing.T) {
	srv := httptest.NewServer(emulator.New())
	t.Cleanup(srv.Close)
	client, err := New(srv.URL+"/v1.0", NoAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	srv.Close()
	if err := client.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded against a closed server")
	}
}

// TestPingWhileThrottled: Graph answering 429, and the calls a Retry-After keeps from Graph, are
// answers — a throttled writer is ready — while a refusal of the credentials is not.
func TestPingWhileThrottled(t *testing.T) {
	emu := emulator.New(emulator.WithFaults(emulator.Faults{ThrottleRate: 1, RetryAfter: 30 * time.Second}))
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	client, err := New(srv.URL+"/v1.0", NoAuth(), WithThrottle(budget.NewLocalPause()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // Graph's 429, then the local answer inside its Retry-After window
		if err := client.Ping(t.Context()); err != nil {
			t.Errorf("Ping %d while throttled: %v", i+1, err)
		}
	}
	if got := emu.Stats().Requests; got != 1 {
		t.Errorf("%d requests reached Graph, want 1 (the second is inside the Retry-After window)", got)
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure."}}`))
	}))
	t.Cleanup(refusing.Close)
	client, err = New(refusing.URL+"/v1.0", NoAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()); directory.ClassOf(err) != directory.ClassForbidden {
		t.Errorf("Ping refused by Graph = %v, want a credentials refusal", err)
	}
}
