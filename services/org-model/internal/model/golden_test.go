package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
	"github.com/orgsync/orgsync/services/org-model/internal/sample"
)

var update = flag.Bool("update", false, "regenerate testdata/company.jsonl and the golden files")

// goldenNow is the moment the golden state is computed at.
var goldenNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	companyFile = "testdata/company.jsonl"
	goldenFile  = "testdata/golden/desired.jsonl"
)

// TestGoldenCompany computes the full desired state of a sample company of 300 workers in 25
// units under testdata/golden-policy.yaml; any change of behaviour shows up as a diff of
// testdata/golden/desired.jsonl. Run with -update to accept a change.
func TestGoldenCompany(t *testing.T) {
	if *update {
		var b bytes.Buffer
		for _, event := range sample.Company(sample.Options{Workers: 300, Units: 25, Seed: 7, Now: goldenNow, Lifecycle: true}) {
			b.Write(compactJSON(t, event))
			b.WriteByte('\n')
		}
		if err := os.WriteFile(companyFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := policy.Load("testdata/golden-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := New(pol)
	for _, event := range readEvents(t, companyFile) {
		m.Record(event, goldenNow)
	}
	var got bytes.Buffer
	for _, obj := range m.ComputeAll(goldenNow) {
		got.Write(compactJSON(t, obj))
		got.WriteByte('\n')
	}
	if *update {
		if err := os.WriteFile(goldenFile, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")); diff != "" {
		t.Errorf("desired state differs from %s (-want +got); run with -update to accept:\n%s", goldenFile, diff)
	}
	// Applying the same company event by event reaches the same state as the replay.
	live := New(pol)
	for _, event := range readEvents(t, companyFile) {
		live.Apply(event, goldenNow)
	}
	var liveState bytes.Buffer
	for _, obj := range live.Objects() {
		liveState.Write(compactJSON(t, obj))
		liveState.WriteByte('\n')
	}
	if diff := cmp.Diff(strings.Split(got.String(), "\n"), strings.Split(liveState.String(), "\n")); diff != "" {
		t.Errorf("event-by-event state differs from the replayed one (-replay +live):\n%s", diff)
	}
}

// compactJSON is protojson without its deliberately unstable spacing.
func compactJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	data, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readEvents(t *testing.T, path string) []*orgsyncv1.HREvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []*orgsyncv1.HREvent
	scanner := bufio.NewScanner(f)
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		var event orgsyncv1.HREvent
		if err := protojson.Unmarshal(scanner.Bytes(), &event); err != nil {
			t.Fatal(err)
		}
		events = append(events, &event)
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}
