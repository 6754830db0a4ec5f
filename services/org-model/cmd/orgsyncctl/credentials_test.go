package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/server"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

func writeToken(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCredentials(t *testing.T) {
	f := startFixture(t, server.TLSConfig{})
	viewerFile := writeToken(t, f.tokens[auth.Viewer])
	approverOIDC := writeToken(t, f.issuer.Token("approver-1", auth.Approver))
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr []string // empty: the command succeeds
		want    string
	}{
		{"the default token file", nil, []string{"status"}, nil, "caught up"},
		{"--token-file", nil, []string{"--token-file", viewerFile, "status"}, nil, "caught up"},
		{"ORGSYNC_TOKEN", map[string]string{"ORGSYNC_TOKEN": f.tokens[auth.Viewer]}, []string{"status"}, nil, "caught up"},
		{"--token-file wins over ORGSYNC_TOKEN", map[string]string{"ORGSYNC_TOKEN": "orgsync_wrong"}, []string{"--token-file", viewerFile, "status"}, nil, "caught up"},
		{"an OIDC token", nil, []string{"--token-file", approverOIDC, "pending"}, nil, "BATCH"},
		{"no token anywhere", map[string]string{"XDG_CONFIG_HOME": t.TempDir()}, []string{"status"},
			[]string{"Unauthenticated", "no token given: use --token-file, ORGSYNC_TOKEN or"}, ""},
		{"a wrong token", map[string]string{"ORGSYNC_TOKEN": "orgsync_wrong"}, []string{"status"},
			[]string{"Unauthenticated", "the token from ORGSYNC_TOKEN was refused"}, ""},
		{"a viewer may not approve", nil, []string{"--token-file", viewerFile, "approve", "b-0"},
			[]string{"PermissionDenied", "requires role approver", "lacks the role"}, ""},
		{"an approver reaches the batch lookup", nil, []string{"--token-file", approverOIDC, "approve", "b-0"},
			[]string{"NotFound"}, ""},
		{"an empty token file", nil, []string{"--token-file", writeToken(t, ""), "status"}, []string{"is empty"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, value := range tt.env {
				t.Setenv(name, value)
			}
			var out bytes.Buffer
			err := run(t.Context(), append([]string{"--addr", f.addr}, tt.args...), &out)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), tt.want) {
					t.Errorf("output %q does not contain %q", out.String(), tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; output %q", out.String())
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pki := authtest.NewPKI(t)
	f := startFixture(t, server.TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile},
		"--ca-file", pki.CAFile, "--cert", pki.ClientCert, "--key", pki.ClientKey)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"CA and client certificate", []string{"--ca-file", pki.CAFile, "--cert", pki.ClientCert, "--key", pki.ClientKey}, ""},
		{"no client certificate", []string{"--ca-file", pki.CAFile}, "Unavailable"},
		{"plaintext", nil, "Unavailable"},
		{"a certificate without its key", []string{"--ca-file", pki.CAFile, "--cert", pki.ClientCert}, "--cert and --key go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"--addr", f.addr, "--timeout", "5s"}, tt.args...), "status")
			err := run(t.Context(), args, &bytes.Buffer{})
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

// decidedLister answers ListPending with recent decisions; other methods are not called.
type decidedLister struct {
	orgsyncv1grpc.OrgModelServiceClient
	resp *orgsyncv1.ListPendingResponse
}

func (d decidedLister) ListPending(context.Context, *orgsyncv1.ListPendingRequest, ...grpc.CallOption) (*orgsyncv1.ListPendingResponse, error) {
	return d.resp, nil
}

func TestPendingShowsWhoDecided(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	c := &cli{out: &out, api: decidedLister{resp: &orgsyncv1.ListPendingResponse{Decided: []*orgsyncv1.PendingBatch{
		{BatchId: "b-1", Decision: orgsyncv1.Decision_DECISION_APPROVED, DecidedAt: at, Disables: 12,
			DecidedBy: &orgsyncv1.Principal{Subject: "3f2a-oid", Issuer: "https://login.example.com/v2.0"}},
		{BatchId: "b-2", Decision: orgsyncv1.Decision_DECISION_REJECTED, DecidedAt: at, Removals: 3,
			DecidedBy: &orgsyncv1.Principal{Subject: "ci", TokenName: "ci"}},
	}}}}
	if err := c.pending(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"b-1      2026-03-02T10:00:00Z  approved  3f2a-oid (https://login.example.com/v2.0)  12",
		"b-2      2026-03-02T10:00:00Z  rejected  token ci",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output\n%s\ndoes not contain %q", out.String(), want)
		}
	}
}
