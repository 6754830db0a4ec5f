package service

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

func TestNewRefusesABadPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("scope: 'worker.location =='\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(t.Context(), Config{PolicyFile: path}, slog.New(slog.DiscardHandler))
	var perr *policy.Error
	if !errors.As(err, &perr) || perr.Line != 1 || perr.File != path {
		t.Errorf("err = %v, want a policy error at %s:1", err, path)
	}
}
