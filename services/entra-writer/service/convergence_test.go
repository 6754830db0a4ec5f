package service

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"

	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestConvergesUnderFaults loads 2,000 workers in 100 units while about a fifth of Graph calls
// fail — throttled (429), refused (503, 500) or applied with a lost answer — and new objects stay
// invisible for a while (replication lag), and checks the directory ends exactly at the desired
// state: every user once, every group with exactly its members, every manager link.
func TestConvergesUnderFaults(t *testing.T) {
	o := synthOrg(2000, 100)
	p := startPipeline(t, emulator.Faults{
		ThrottleRate: 0.08, ServerErrorRate: 0.07, LostAnswerRate: 0.05, Seed: 20261121,
		ReplicationLag: 300 * time.Millisecond,
	})
	p.publish(t, o.objects)
	p.waitForResults(t, len(o.objects), 5*time.Minute)

	users := p.emulator.Users()
	if len(users) != o.workers {
		t.Errorf("%d users, want %d", len(users), o.workers)
	}
	idOf := map[string]string{}
	workerOf := map[string]string{}
	for _, u := range users {
		full, _ := p.emulator.User(u.ID())
		employeeID := full.String("employeeId")
		if idOf[employeeID] != "" {
			t.Errorf("duplicate account for %s", employeeID)
		}
		idOf[employeeID], workerOf[u.ID()] = u.ID(), employeeID
	}
	groups := p.emulator.Groups()
	if len(groups) != len(o.members) {
		t.Errorf("%d groups, want %d", len(groups), len(o.members))
	}
	for _, g := range groups {
		key := strings.TrimPrefix(g.String("mailNickname"), "orgsync-")
		var got []string
		for _, memberID := range p.emulator.Members(g.ID()) {
			got = append(got, workerOf[memberID])
		}
		sort.Strings(got)
		if diff := cmp.Diff(o.members[key], got); diff != "" {
			t.Errorf("members of %s (-want +got):\n%s", key, diff)
		}
	}
	for worker, manager := range o.managers {
		if got, _ := p.emulator.ManagerOf(idOf[worker]); got != idOf[manager] {
			t.Errorf("manager of %s = %q, want %s's account %q", worker, got, manager, idOf[manager])
		}
	}
	stats := p.emulator.Stats()
	t.Logf("requests %d, write requests %d, successful writes %d, errors %v", stats.Requests, stats.WriteRequests, stats.SuccessfulWrites, stats.ErrorCodes)
	if stats.ErrorCodes[emulator.CodeTooManyRequests] == 0 || stats.ErrorCodes[emulator.CodeGeneralException] == 0 {
		t.Errorf("faults were not injected: %v", stats.ErrorCodes)
	}
}

// TestRemovalsInBatchesSurvivePerItem429s removes 40 memberships through $batch while a third of
// the requests — batch items included — are throttled: each throttled item is retried on its own
// and the group ends empty.
func TestRemovalsInBatchesSurvivePerItem429s(t *testing.T) {
	o := synthOrg(40, 1)
	p := startPipeline(t, emulator.Faults{})
	p.publish(t, o.objects)
	p.waitForResults(t, len(o.objects), time.Minute)

	p.emulator.SetFaults(emulator.Faults{ThrottleRate: 0.3, Seed: 11})
	var tombstones []*orgsyncv1.DesiredObject
	for _, obj := range o.objects {
		if m := obj.GetMembership(); m != nil {
			tombstone := proto.CloneOf(obj)
			tombstone.Revision, tombstone.Tombstone = 2, true
			tombstones = append(tombstones, tombstone)
		}
	}
	p.publish(t, tombstones)
	deadline := time.Now().Add(time.Minute)
	for {
		results := p.waitForResults(t, len(o.objects), time.Minute)
		done := 0
		for path, r := range results {
			if strings.HasPrefix(path, "entra.member.") && r.GetRevision() == 2 {
				done++
			}
		}
		if done == len(tombstones) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d removals reported", done, len(tombstones))
		}
		time.Sleep(200 * time.Millisecond)
	}
	group := p.emulator.Groups()[0]
	if members := p.emulator.Members(group.ID()); len(members) != 0 {
		t.Errorf("%d members left", len(members))
	}
	stats := p.emulator.Stats()
	if stats.Operations[emulator.OpBatch] < 2 || stats.ErrorCodes[emulator.CodeTooManyRequests] == 0 {
		t.Errorf("want removals in several $batch requests with throttled items: %v", stats.Operations)
	}
}
