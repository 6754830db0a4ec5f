package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestRunAndREADMEWebhook does what the README's quickstart does: start the local stack (on free
// ports), read where it listens from what it prints, post the example hire with
// send-webhook.sh (openssl + curl), and find the user and the membership through the emulator's
// Graph API.
func TestRunAndREADMEWebhook(t *testing.T) {
	// The dev token goes where orgsyncctl looks by default: here, a temporary config directory.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	stdoutReader, stdout := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-random-ports", "-store", t.TempDir(), "-sample", "sample/company.json"}, stdout)
		stdout.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	printed := map[string]string{}
	patterns := map[string]*regexp.Regexp{
		"emulator": regexp.MustCompile(`Graph emulator\s+(http://\S+/v1\.0)`),
		"webhooks": regexp.MustCompile(`webhooks: (http://\S+)`),
		"loaded":   regexp.MustCompile(`loaded (\d+) sample events`),
		"token":    regexp.MustCompile(`admin token\s+(orgsync_\S+)`),
		"orgmodel": regexp.MustCompile(`org-model\s+gRPC (\S+)`),
		"admin":    regexp.MustCompile(`admin (http://\S+/v1/dead-letters)`),
	}
	lines := bufio.NewScanner(stdoutReader)
	for len(printed) < len(patterns) && lines.Scan() {
		for name, re := range patterns {
			if m := re.FindStringSubmatch(lines.Text()); m != nil {
				printed[name] = m[1]
			}
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdoutReader) }()
	if len(printed) < len(patterns) {
		t.Fatalf("run printed only %v", printed)
	}
	if printed["loaded"] != "17" {
		t.Errorf("loaded %s sample events, want 17", printed["loaded"])
	}
	checkDevToken(t, printed["token"], printed["orgmodel"], printed["admin"])

	cmd := exec.CommandContext(t.Context(), "./send-webhook.sh", "sample/hire-jane.json", "msg_readme")
	cmd.Env = append(cmd.Environ(), "ORGSYNC_WEBHOOK_URL="+printed["webhooks"])
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"eventIds":["msg_readme"]`) {
		t.Fatalf("send-webhook.sh: %v\n%s", err, out)
	}

	base := printed["emulator"]
	var user map[string]any
	eventually(t, func() bool {
		users := graphList(t, base+"/users?$filter="+url.QueryEscape("employeeId eq 'E1104'")+"&$select=id,displayName,department")
		if len(users) == 1 {
			user = users[0]
		}
		return user != nil
	})
	if user["displayName"] != "Jane Doe" || user["department"] != "Sales" {
		t.Errorf("user = %v", user)
	}
	groups := graphList(t, base+"/groups?$filter="+url.QueryEscape("mailNickname eq 'orgsync-unit-sales'")+"&$select=id")
	if len(groups) != 1 {
		t.Fatalf("Sales groups = %v", groups)
	}
	eventually(t, func() bool {
		for _, member := range graphList(t, base+"/groups/"+groups[0]["id"].(string)+"/members?$select=id") {
			if member["id"] == user["id"] {
				return true
			}
		}
		return false
	})
}

// checkDevToken checks that the printed token is the one in the default token file, that
// org-model's gRPC API and entra-writer's admin routes accept it, and refuse a call without it.
func checkDevToken(t *testing.T, token, orgModelAddr, deadLettersURL string) {
	t.Helper()
	path, err := auth.DefaultTokenFile()
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := auth.ReadTokenFile(path); err != nil || stored != token {
		t.Errorf("default token file holds %q (%v), want the printed token", stored, err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", info.Mode().Perm())
	}
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{{"", codes.Unauthenticated}, {token, codes.OK}} {
		options := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tc.token != "" {
			options = append(options, grpc.WithPerRPCCredentials(auth.Bearer(tc.token)))
		}
		conn, err := grpc.NewClient(orgModelAddr, options...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = orgsyncv1.NewOrgModelServiceClient(conn).GetStatus(t.Context(), &orgsyncv1.GetStatusRequest{})
		conn.Close()
		if status.Code(err) != tc.want {
			t.Errorf("GetStatus with token %t: %v, want %s", tc.token != "", err, tc.want)
		}
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {token, http.StatusOK}} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", deadLettersURL, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with token %t: %d, want %d", deadLettersURL, tc.token != "", resp.StatusCode, tc.want)
		}
	}
}

func graphList(t *testing.T, rawURL string) []map[string]any {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Value []map[string]any `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %v", rawURL, resp.Status, err)
	}
	return page.Value
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
