package charttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the repository's root, three levels above this package.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}()

var (
	chartDir    = filepath.Join(repoRoot, "charts", "orgsync")
	examplesDir = filepath.Join(repoRoot, "deploy", "kubernetes")
)

var helmPath = sync.OnceValues(func() (string, error) {
	// make chart-test passes the binary it built into .bin/; otherwise the go tool builds the
	// version this module pins (and caches it).
	if path := os.Getenv("HELM"); path != "" {
		return path, nil
	}
	cmd := exec.Command("go", "tool", "-n", "helm")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
})

// helm runs the pinned helm with its state (cache, config, repositories) in a temporary
// directory, so that nothing on the machine influences the result, and returns stdout, stderr and
// the error.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	path, err := helmPath()
	if err != nil {
		t.Fatalf("locating helm (set HELM or run make chart-test): %v", err)
	}
	home := t.TempDir()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "kubeconfig"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

// render runs helm template for release orgsync in namespace orgsync and fails the test when
// helm refuses.
func render(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"template", "orgsync", chartDir, "--namespace", "orgsync"}, args...)
	stdout, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}
