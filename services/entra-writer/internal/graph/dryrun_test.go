package graph

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

func TestDryRunLogsWritesInsteadOfSendingThem(t *testing.T) {
	emu := emulator.New()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	client, err := New(srv.URL+"/v1.0", NoAuth(), WithDryRun(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	const password = "Xy7!initial-password-Q"
	user, err := client.CreateUser(t.Context(), directory.UserAttributes{
		AccountEnabled: true, DisplayName: "Jane Doe", UserPrincipalName: "jane.doe@corp.example.com", MailNickname: "jane.doe", EmployeeID: "E1",
	}, password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(user.ID, "dryrun-") {
		t.Errorf("dry-run create returned id %q", user.ID)
	}
	if err := client.AddMember(t.Context(), "group-id", user.ID); err != nil {
		t.Fatal(err)
	}
	// Reads still reach Graph.
	if found, err := client.FindUserByEmployeeID(t.Context(), "E1"); err != nil || found != nil {
		t.Errorf("find = %v, %v; want nothing, from the real (empty) directory", found, err)
	}
	stats := emu.Stats()
	if stats.WriteRequests != 0 || stats.Requests != 1 {
		t.Errorf("emulator saw %d requests, %d writes; want only the read", stats.Requests, stats.WriteRequests)
	}
	out := logs.String()
	for _, want := range []string{`"method":"POST"`, `/v1.0/users`, `jane.doe@corp.example.com`, `[redacted]`, `/members/$ref`} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, password) {
		t.Error("the dry-run log shows the password")
	}
}
