package graph

import (
	"net/http/httptest"
	"testing"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestContract runs the Directory contract through the real msgraph-sdk-go client against the
// Graph emulator: the same suite the in-memory fake passes.
func TestContract(t *testing.T) {
	directorytest.RunContract(t, func(t *testing.T) (directorytest.Directory, directorytest.Members, directorytest.Managers) {
		emu := emulator.New()
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
