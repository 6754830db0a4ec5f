package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

var testNow = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

const scimToken = "synth-scim-token-0123456789"

func TestDeterministic(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "small", opts: Options{Workers: 50, Units: 5, Seed: 1, Now: testNow}},
		{name: "medium", opts: Options{Workers: 2000, Units: 120, Seed: 42, Now: testNow}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payloads := func() []string {
				org := Generate(tt.opts)
				var out []string
				for _, e := range append(org.Events(), org.Changes(ChangeOptions{Count: 300, Seed: 7})...) {
					out = append(out, e.ID+" "+string(e.Payload()))
				}
				return out
			}
			if diff := cmp.Diff(payloads(), payloads()); diff != "" {
				t.Errorf("same seed, different output (-first +second):\n%s", diff)
			}
			other := tt.opts
			other.Seed++
			if first, second := Generate(tt.opts).Events(), Generate(other).Events(); string(first[len(first)-1].Payload()) == string(second[len(second)-1].Payload()) {
				t.Error("another seed gave the same last worker")
			}
		})
	}
}

func depthOf(org *Org) (minLeaf, maxDepth int) {
	hasChild := map[string]bool{}
	for _, u := range org.Units {
		hasChild[u.ParentOrgUnitID] = true
	}
	minLeaf = 1 << 30
	for _, u := range org.Units {
		maxDepth = max(maxDepth, u.Depth)
		if !hasChild[u.OrgUnitID] {
			minLeaf = min(minLeaf, u.Depth)
		}
	}
	return minLeaf, maxDepth
}

func TestShape(t *testing.T) {
	tests := []struct {
		name           string
		workers, units int
	}{
		{name: "2,000 workers in 120 units", workers: 2000, units: 120},
		{name: "10,000 workers in 600 units", workers: 10000, units: 600},
	}
	for _, tt := range tests {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", tt.name, seed), func(t *testing.T) {
				org := Generate(Options{Workers: tt.workers, Units: tt.units, Seed: seed, Now: testNow})
				if len(org.Workers) != tt.workers || len(org.Units) != tt.units {
					t.Fatalf("%d workers in %d units, want %d in %d", len(org.Workers), len(org.Units), tt.workers, tt.units)
				}
				if _, depth := depthOf(org); depth < 4 || depth > 8 {
					t.Errorf("tree depth %d, want 4 to 8", depth)
				}
				// Parents come first and exist; every unit has a manager who works in it.
				seen := map[string]bool{}
				for _, u := range org.Units {
					if u.ParentOrgUnitID != "" && !seen[u.ParentOrgUnitID] {
						t.Errorf("unit %s comes before its parent %s", u.OrgUnitID, u.ParentOrgUnitID)
					}
					seen[u.OrgUnitID] = true
					if u.ManagerWorkerID == "" {
						t.Errorf("unit %s has no manager", u.OrgUnitID)
					}
				}
				// Skew: the largest unit is many times the median one.
				size := map[string]int{}
				withoutManager := 0
				for _, w := range org.Workers {
					size[w.OrgUnitID]++
					if w.ManagerWorkerID == "" {
						withoutManager++
					}
				}
				if withoutManager != 1 {
					t.Errorf("%d workers without a manager, want only the head of the root unit", withoutManager)
				}
				sizes := make([]int, 0, len(size))
				for _, n := range size {
					sizes = append(sizes, n)
				}
				sort.Ints(sizes)
				if largest, median := sizes[len(sizes)-1], sizes[len(sizes)/2]; largest < 8*median {
					t.Errorf("largest unit %d, median %d: sizes are not skewed", largest, median)
				}
				// Names: many namesakes, many diacritics.
				names := map[string]int{}
				accented := 0
				types := map[string]int{}
				future, leavers := 0, 0
				for _, w := range org.Workers {
					full := w.Name.GivenName + " " + w.Name.FamilyName
					names[full]++
					if utf8.RuneCountInString(full) != len(full) {
						accented++
					}
					types[w.EmploymentType]++
					if w.StartDate > testNow.Format(time.DateOnly) {
						future++
					}
					if w.EndDate != "" {
						leavers++
					}
				}
				if names["Maria Garcia"] < tt.workers/50 {
					t.Errorf("%d workers named Maria Garcia, want at least %d", names["Maria Garcia"], tt.workers/50)
				}
				if accented < tt.workers/3 {
					t.Errorf("%d names with diacritics of %d", accented, tt.workers)
				}
				for _, kind := range []string{"employee", "contractor", "intern", "temporary"} {
					if types[kind] == 0 {
						t.Errorf("no %s", kind)
					}
				}
				if types["employee"] < tt.workers*7/10 {
					t.Errorf("%d employees of %d", types["employee"], tt.workers)
				}
				if future < tt.workers/100 || leavers < tt.workers/50 {
					t.Errorf("%d future hires and %d leavers of %d", future, leavers, tt.workers)
				}
			})
		}
	}
}

func TestChangeRates(t *testing.T) {
	tests := []struct {
		name  string
		count int
		mix   Mix
	}{
		{name: "default mix", count: 5000, mix: DefaultMix},
		{name: "hires and leaves only", count: 2000, mix: Mix{Hire: 1, Leave: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org := Generate(Options{Workers: 1000, Units: 60, Seed: 3, Now: testNow})
			initial := org.Events()
			changes := org.Changes(ChangeOptions{Count: tt.count, Seed: 9, Mix: tt.mix})
			if len(changes) != tt.count {
				t.Fatalf("%d changes, want %d", len(changes), tt.count)
			}
			counts := map[Kind]int{}
			ids := map[string]bool{}
			previous := map[string]string{}
			for _, e := range initial {
				if e.Worker != nil {
					record, _ := json.Marshal(e.Worker)
					previous[e.Worker.WorkerID] = string(record)
				}
			}
			lastDay := 0
			for _, c := range changes {
				counts[c.Kind]++
				if ids[c.ID] {
					t.Errorf("duplicate event id %s", c.ID)
				}
				ids[c.ID] = true
				if c.Day < lastDay {
					t.Errorf("change %s on day %d after day %d", c.ID, c.Day, lastDay)
				}
				lastDay = c.Day
				record, _ := json.Marshal(c.Worker)
				if previous[c.Worker.WorkerID] == string(record) {
					t.Errorf("change %s (%s) leaves worker %s as it was", c.ID, c.Kind, c.Worker.WorkerID)
				}
				previous[c.Worker.WorkerID] = string(record)
				if c.Kind == KindLeave && (c.Worker.EndDate == "" || c.Worker.EmploymentStatus != "terminated") {
					t.Errorf("leave %s without end date or terminated status: %+v", c.ID, c.Worker)
				}
				if c.Kind == KindRehire && (c.Worker.EndDate != "" || c.Worker.EmploymentStatus != "active") {
					t.Errorf("rehire %s still ended: %+v", c.ID, c.Worker)
				}
			}
			total := tt.mix.Hire + tt.mix.Move + tt.mix.Leave + tt.mix.Rehire + tt.mix.Update
			want := map[Kind]float64{KindHire: tt.mix.Hire / total, KindMove: tt.mix.Move / total, KindLeave: tt.mix.Leave / total, KindUpdate: tt.mix.Update / total}
			for kind, share := range want {
				got := float64(counts[kind]) / float64(tt.count)
				// Rehires fall back to hires while nobody has left, so hires may run a little high.
				if got < share-0.04 || got > share+0.06 {
					t.Errorf("%s: share %.3f, want about %.3f (counts %v)", kind, got, share, counts)
				}
			}
			if tt.mix.Rehire > 0 && counts[KindRehire] == 0 {
				t.Errorf("no rehires: %v", counts)
			}
			if lastDay < 2 {
				t.Errorf("changes over %d simulated days", lastDay)
			}
		})
	}
}

// TestAcceptedByHRIngest sends an organisation and its changes through hr-ingest's real
// webhook endpoint (Standard Webhooks signature, canonical parser, JetStream) and checks every
// event is accepted and stored once.
func TestAcceptedByHRIngest(t *testing.T) {
	tests := []struct {
		name string
		mode string
	}{
		{name: "one event per webhook", mode: "single"},
		{name: "batches of 100", mode: "batch"},
		{name: "SCIM bulk requests of 50", mode: "scim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			natsSrv := natsembed.StartForTest(t)
			secret, err := webhook.ParseSecret("whsec_c3ludGgtdGVzdC1zZWNyZXQtc3ludGgtdGVzdA==")
			if err != nil {
				t.Fatal(err)
			}
			svc, err := hringest.New(ctx, hringest.Config{
				NATSURL: natsSrv.ClientURL(), Streams: stream.DefaultConfig(),
				Server: server.Config{Name: hringest.Name, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"},
				Sources: []hringest.SourceConfig{
					{Name: "synth", Secrets: []webhook.Secret{secret}},
					{Name: "synth-scim", Kind: hringest.KindSCIM, Tokens: []string{scimToken}, Location: time.UTC},
				},
				TimestampTolerance: 5 * time.Minute, MaxBodyBytes: 4 << 20, PublishTimeout: 5 * time.Second,
			}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- svc.Run(runCtx) }()
			t.Cleanup(func() { cancel(); <-done })

			org := Generate(Options{Workers: 300, Units: 25, Seed: 11, Now: testNow})
			events := append(org.Events(), org.Changes(ChangeOptions{Count: 300, Seed: 12})...)
			url := "http://" + svc.HTTPAddr() + "/v1/sources/synth/events"
			send := func(id string, body []byte) {
				target := url
				if tt.mode == "scim" {
					target = "http://" + svc.HTTPAddr() + "/v1/sources/synth-scim/scim/Bulk"
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tt.mode == "scim" {
					req.Header.Set("Content-Type", "application/scim+json")
					req.Header.Set("Authorization", "Bearer "+scimToken)
				} else {
					webhook.SetHeaders(req.Header, secret, id, time.Now(), body)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 || tt.mode != "scim" && resp.StatusCode != http.StatusAccepted {
					t.Fatalf("%s: status %d: %s", id, resp.StatusCode, answer)
				}
			}
			want := len(events)
			switch tt.mode {
			case "batch":
				for chunk := range slices.Chunk(events, 100) {
					send(chunk[0].ID+"-batch", Batch(chunk))
				}
			case "scim":
				var workers []Event
				for _, e := range events {
					if e.Worker != nil {
						workers = append(workers, e)
					}
				}
				for chunk := range slices.Chunk(workers, MaxSCIMOperations) {
					send(chunk[0].ID, SCIMBulk(chunk))
				}
				// Every operation is stored, including a change back to an earlier state
				// (A → B → A), which this stream holds: hr-ingest treats a SCIM request as a retry
				// only when it ends a worker in the state already stored for them.
				want = len(workers)
			default:
				for _, e := range events {
					send(e.ID, e.Payload())
				}
			}
			nc, err := nats.Connect(natsSrv.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			hr, err := js.Stream(ctx, stream.HR)
			if err != nil {
				t.Fatal(err)
			}
			info, err := hr.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(uint64(want), info.State.Msgs); diff != "" {
				t.Errorf("events stored in HR (-want +got):\n%s", diff)
			}
			if strings.Contains(string(events[0].Payload()), `"Depth"`) {
				t.Error("the unit's depth leaked into the payload")
			}
		})
	}
}
