package charttest

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// reporter is the part of testing.T the workload checks use, so that they can also be run
// against a recorder to show that they fail when they should.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

var errStopped = errors.New("check stopped by Fatalf")

// recorder collects the failures a check reports instead of failing the test.
type recorder struct{ failures []string }

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(errStopped)
}

func (r *recorder) run(check func()) {
	defer func() {
		if v := recover(); v != nil && v != errStopped {
			panic(v)
		}
	}()
	check()
}

// TestWorkloadChecksCatchWeakening renders the local example with one security setting or
// resource weakened, through values the schema allows, and shows the workload checks report it.
func TestWorkloadChecksCatchWeakening(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"writable root filesystem", []string{"--set", "containerSecurityContext.readOnlyRootFilesystem=false"}, "readOnlyRootFilesystem is not true"},
		{"privilege escalation", []string{"--set", "containerSecurityContext.allowPrivilegeEscalation=true"}, "allowPrivilegeEscalation is not false"},
		{"root allowed", []string{"--set", "podSecurityContext.runAsNonRoot=false"}, "pod securityContext.runAsNonRoot is not true"},
		{"capabilities kept", []string{"--set-json", `containerSecurityContext.capabilities={"drop":["NET_RAW"]}`}, "want drop ALL"},
		{"unconfined seccomp", []string{"--set", "containerSecurityContext.seccompProfile.type=Unconfined"}, "seccompProfile"},
		{"request above limit", []string{"--set", "hrIngest.resources.requests.cpu=4"}, "is above its limit"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			args := append([]string{"--values", filepath.Join(examplesDir, "values-local.yaml")}, test.set...)
			objects, err := decodeManifests(render(t, args...))
			if err != nil {
				t.Fatal(err)
			}
			d := index(t, objects).deployments["hr-ingest"]
			if d == nil {
				t.Fatal("hr-ingest is not rendered")
			}
			var rec recorder
			rec.run(func() { checkWorkload(&rec, "hr-ingest", d) })
			if !strings.Contains(strings.Join(rec.failures, "\n"), test.want) {
				t.Errorf("checkWorkload reported %q, want a failure containing %q", rec.failures, test.want)
			}
		})
	}
}
