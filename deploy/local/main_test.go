package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunAndREADMEWebhook does what the README's quickstart does: start the local stack (on free
// ports), read where it listens from what it prints, post the example hire with
// send-webhook.sh (openssl + curl), and find the user and the membership through the emulator's
// Graph API.
func TestRunAndREADMEWebhook(t *testing.T) {
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
