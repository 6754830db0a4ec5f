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
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestImageBinary builds hr-ingest with deploy/docker/build.sh, the script `make images` and the
// Tiltfile use, and checks the binary is what a distroless/static (or scratch) image needs: static,
// no interpreter or shared libraries, stripped, built without cgo and local paths, with the
// version stamped into main.version.
func TestImageBinary(t *testing.T) {
	out := t.TempDir()
	version := "charttest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.Command(filepath.Join(repoRoot, "deploy", "docker", "build.sh"), "hr-ingest", out)
	cmd.Env = append(os.Environ(), "VERSION="+version)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh hr-ingest: %v\n%s", err, output)
	}
	binary := filepath.Join(out, "hr-ingest")

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
// podSecurityContext declares, so runAsNonRoot can verify it and files are owned consistently.
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
