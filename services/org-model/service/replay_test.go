package service

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/sample"
	"github.com/orgsync/orgsync/services/org-model/replay"
)

// stateLines renders desired objects as "path state" lines without revisions and causes, sorted.
func stateLines(t *testing.T, objects []*orgsyncv1.DesiredObject) []string {
	t.Helper()
	var out []string
	for _, obj := range objects {
		if obj.GetTombstone() {
			continue
		}
		path, err := subject.ObjectPath(obj)
		if err != nil {
			t.Fatal(err)
		}
		state := prototext.MarshalOptions{}.Format(obj.GetUser())
		if obj.GetGroup() != nil {
			state = prototext.MarshalOptions{}.Format(obj.GetGroup())
		} else if obj.GetMembership() != nil {
			state = prototext.MarshalOptions{}.Format(obj.GetMembership())
		}
		out = append(out, path+" "+obj.GetKey()+" "+state)
	}
	slices.Sort(out)
	return out
}

// TestReplayMatchesTheService checks that the oracle the chaos and bench runs use — replay.Desired,
// plain function calls — computes exactly the desired state the service publishes to DIRECTORY
// after replaying the same HR events from JetStream, for Entra and AD.
func TestReplayMatchesTheService(t *testing.T) {
	const policyFile = "../policy.example.yaml" // maps Entra and AD
	policyYAML, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	events := sample.Company(sample.Options{Workers: 80, Units: 9, Seed: 11, Now: now, Lifecycle: true})

	h := newHarness(t)
	for i, event := range events {
		h.hr(t, "e"+time.Duration(i).String(), event)
	}
	h.start(t, func(cfg *Config) {
		cfg.PolicyFile = policyFile
		cfg.Clock = clock.NewFake(now)
	})
	var published []*orgsyncv1.DesiredObject
	for _, obj := range h.directory(t) {
		published = append(published, obj)
	}

	want, err := replay.Desired(policyFile, policyYAML, events, now)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[orgsyncv1.Target]int{}
	for _, obj := range want {
		targets[obj.GetTarget()]++
	}
	if targets[orgsyncv1.Target_TARGET_ENTRA] == 0 || targets[orgsyncv1.Target_TARGET_AD] == 0 {
		t.Fatalf("replay computed objects per target %v; want both Entra and AD", targets)
	}
	if diff := cmp.Diff(stateLines(t, want), stateLines(t, published)); diff != "" {
		t.Errorf("DIRECTORY differs from replay.Desired (-replay +service):\n%s", diff)
	}
}

func TestReplayRejectsABadPolicy(t *testing.T) {
	_, err := replay.Desired("bad.yaml", []byte("groups: {unit: {displayName: 'unit.name +'}}\n"), nil, time.Now())
	if err == nil {
		t.Fatal("a policy that does not compile: no error")
	}
}
