package charttest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestImageBinary builds services with deploy/docker/build.sh, the script `make images` and the
// Tiltfile use, and checks each binary is what a distroless/static (or scratch) image needs:
// static, no interpreter or shared libraries, stripped, built without cgo and local paths, with
// the version stamped into main.version. hr-ingest and ad-writer (go-ldap, the newest image)
// stand for the rest: entra-writer's cold build of msgraph-sdk-go takes minutes, and every
// service goes through the same script and flags.
func TestImageBinary(t *testing.T) {
	for _, service := range []string{"hr-ingest", "ad-writer"} {
		t.Run(service, func(t *testing.T) { checkImageBinary(t, service) })
	}
}

func checkImageBinary(t *testing.T, service string) {
	out := t.TempDir()
	version := "charttest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.Command(filepath.Join(repoRoot, "deploy", "docker", "build.sh"), service, out)
	cmd.Env = append(os.Environ(), "VERSION="+version)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh %s: %v\n%s", service, err, output)
	}
	binary := filepath.Join(out, service)

	t.Run("static ELF", func(t *testing.T) {
		f, err := elf.Open(binary)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("program header %s: the binary needs a dynamic loader", prog.Type)
			}
		}
		if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
			t.Error("the binary has a .dynamic or .interp section")
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("imported libraries %v (%v), want none", libs, err)
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table; -s should strip it")
		}
	})

	t.Run("build settings", func(t *testing.T) {
		info, err := buildinfo.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		for key, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux"} {
			if settings[key] != want {
				t.Errorf("build setting %s = %q, want %q", key, settings[key], want)
			}
		}
		// With -trimpath, Go leaves -ldflags out of the build info (it may hold local paths), so
		// the version string below can only come from main.version.
		if ldflags, ok := settings["-ldflags"]; ok {
			t.Fatalf("build info records -ldflags %q; the version check below would prove nothing", ldflags)
		}
	})

	t.Run("version stamped", func(t *testing.T) {
		data, err := os.ReadFile(binary)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(version)) {
			t.Errorf("the binary does not contain %q: -X main.version did not take", version)
		}
	})
}

// TestDockerfileUser checks that the image runs as the numeric non-root user the chart's
// podSecurityContext declares, so runAsNonRoot can verify it and files are owned consistently,
// and that every workload the chart renders (ad-writer included) runs as that user.
func TestDockerfileUser(t *testing.T) {
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`(?m)^USER (\d+):(\d+)\s*$`).FindSubmatch(dockerfile)
	if match == nil {
		t.Fatal("the Dockerfile has no numeric USER uid:gid line")
	}
	var values struct {
		PodSecurityContext struct {
			RunAsUser  int `json:"runAsUser"`
			RunAsGroup int `json:"runAsGroup"`
		} `json:"podSecurityContext"`
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(string(match[1]))
	gid, _ := strconv.Atoi(string(match[2]))
	if uid == 0 || gid == 0 {
		t.Errorf("the Dockerfile runs as %d:%d; root is not allowed", uid, gid)
	}
	if uid != values.PodSecurityContext.RunAsUser || gid != values.PodSecurityContext.RunAsGroup {
		t.Errorf("Dockerfile USER %d:%d, chart podSecurityContext %d:%d: they must agree",
			uid, gid, values.PodSecurityContext.RunAsUser, values.PodSecurityContext.RunAsGroup)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["[^"]+"\]\s*$`).Match(dockerfile) {
		t.Error("the ENTRYPOINT is not in exec form: the image has no shell to run a shell form")
	}
	r := renderObjects(t, "--values", filepath.Join(examplesDir, "values-production.yaml"),
		"--values", filepath.Join(repoRoot, "deploy", "kubernetes", "charttest", "testdata", "all-features.yaml"))
	for _, component := range serviceNames(t) {
		d := r.deployments[component]
		if d == nil {
			t.Errorf("the chart with every feature renders no Deployment for %s", component)
			continue
		}
		sc := d.Spec.Template.Spec.SecurityContext
		if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil || int(*sc.RunAsUser) != uid || int(*sc.RunAsGroup) != gid {
			t.Errorf("%s pod securityContext %+v, want runAsUser %d and runAsGroup %d, the Dockerfile's USER", component, sc, uid, gid)
		}
	}
}

// TestEveryServiceIsBuilt checks that `make build` and `make images` name every service under
// services/ (a dry run: make -n prints the commands without running them).
func TestEveryServiceIsBuilt(t *testing.T) {
	for _, target := range []string{"build", "images"} {
		t.Run(target, func(t *testing.T) {
			// CONTAINER_ENGINE given: the dry run must not depend on docker or buildah.
			cmd := exec.Command("make", "--no-print-directory", "-n", "-C", repoRoot, target, "CONTAINER_ENGINE=docker")
			// A make running this test passes its flags down; this one must not inherit them.
			for _, v := range os.Environ() {
				if name, _, _ := strings.Cut(v, "="); name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
					cmd.Env = append(cmd.Env, v)
				}
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", target, err, out)
			}
			for _, service := range serviceNames(t) {
				want := regexp.MustCompile(`(^|[\s/])` + regexp.QuoteMeta(service) + `(\s|;|$)`)
				if !want.Match(out) {
					t.Errorf("make %s does not build %s:\n%s", target, service, out)
				}
			}
		})
	}
}

// TestDevManifests decodes the development Redis manifest strictly, like the chart's output.
func TestDevManifests(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(examplesDir, "redis", "redis-dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objects, err := decodeManifests(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := index(t, objects)
	wantObject(t, r, "Deployment/redis-master")
	wantObject(t, r, "Service/redis-master")
	checkReferences(t, r)
}
