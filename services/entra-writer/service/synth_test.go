package service

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// org is a synthetic organisation's desired state for target entra: a group per unit, a user per
// worker (the first worker of each unit manages the others; unit heads report to the first
// worker of all), and each worker a member of their unit's group.
type org struct {
	objects       []*orgsyncv1.DesiredObject
	members       map[string][]string // group key → worker ids
	managers      map[string]string   // worker id → manager worker id
	workers, unit int
}

func synthOrg(workers, units int) org {
	o := org{members: map[string][]string{}, managers: map[string]string{}, workers: workers, unit: units}
	for u := range units {
		key := fmt.Sprintf("unit-u%04d", u)
		o.objects = append(o.objects, &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: key, Revision: 1,
			Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{
				GroupKey: key, Kind: orgsyncv1.GroupKind_GROUP_KIND_ORG_UNIT, DisplayName: fmt.Sprintf("Org - Unit %d", u),
				MailNickname: fmt.Sprintf("orgsync-unit-u%04d", u),
			}}})
	}
	memberships := make([][]*orgsyncv1.DesiredObject, units)
	for w := range workers {
		id := fmt.Sprintf("E%06d", w)
		unitIndex := w % units
		key := fmt.Sprintf("unit-u%04d", unitIndex)
		manager := ""
		switch head := fmt.Sprintf("E%06d", unitIndex); {
		case w == 0:
		case id == head:
			manager = "E000000"
		default:
			manager = head
		}
		if manager != "" {
			o.managers[id] = manager
		}
		o.objects = append(o.objects, &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: id, Revision: 1,
			Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{
				WorkerId: id, EmployeeId: id, AccountEnabled: true, DisplayName: "Worker " + id, GivenName: "Worker", Surname: id,
				UserPrincipalName: strings.ToLower(id) + "@corp.example.com", MailNickname: strings.ToLower(id),
				Department: fmt.Sprintf("Unit %d", unitIndex), JobTitle: "Engineer", ManagerWorkerId: manager,
			}}})
		memberships[unitIndex] = append(memberships[unitIndex], &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: key + "/" + id, Revision: 1,
			Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{
				GroupKey: key, MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: id,
			}}})
		o.members[key] = append(o.members[key], id)
	}
	// Memberships unit by unit, as org-model's reconcile publishes them.
	for _, unitMemberships := range memberships {
		o.objects = append(o.objects, unitMemberships...)
	}
	return o
}

// shuffleMemberships puts the memberships, which follow every user and group, in random order.
func (o org) shuffleMemberships(r *rand.Rand) {
	first := slices.IndexFunc(o.objects, func(obj *orgsyncv1.DesiredObject) bool { return obj.GetMembership() != nil })
	memberships := o.objects[first:]
	r.Shuffle(len(memberships), func(i, j int) { memberships[i], memberships[j] = memberships[j], memberships[i] })
}

// minimumWrites is the fewest Graph writes that can build the organisation: one create per user
// and group, one manager link per managed worker, and one bind per 20 members of a group.
func (o org) minimumWrites() int {
	writes := o.workers + o.unit + len(o.managers)
	for _, members := range o.members {
		writes += (len(members) + 19) / 20
	}
	return writes
}

// pipeline is entra-writer replicas against an emulator over embedded JetStream.
type pipeline struct {
	emulator *emulator.Server
	js       jetstream.JetStream
	pub      *stream.Publisher
	natsURL  string
	graphURL string
}

// startPipeline starts the emulator, JetStream and one writer without a write budget.
func startPipeline(tb testing.TB, faults emulator.Faults) pipeline {
	tb.Helper()
	p := newPipeline(tb, faults)
	p.startWriter(tb, nil)
	return p
}

func newPipeline(tb testing.TB, faults emulator.Faults) pipeline {
	tb.Helper()
	natsSrv := streamtest.StartBare(tb)
	js := natsSrv.JS
	emu := emulator.New(emulator.WithFaults(faults))
	graphSrv := httptest.NewServer(emu)
	tb.Cleanup(graphSrv.Close)
	return pipeline{emulator: emu, js: js, pub: stream.NewPublisher(js), natsURL: natsSrv.ClientURL(), graphURL: graphSrv.URL + "/v1.0"}
}

// startWriter starts one more entra-writer replica; configure may change its configuration.
func (p pipeline) startWriter(tb testing.TB, configure func(*Config)) {
	tb.Helper()
	p.startWriterWith(tb, configure, nil)
}

// startWriterWith is startWriter that also hands the replica's server to inspect, e.g. its
// readiness, and returns the replica.
func (p pipeline) startWriterWith(tb testing.TB, configure func(*Config), inspect func(*server.Server)) *Service {
	tb.Helper()
	svc, _ := p.startReplica(tb, configure, inspect)
	return svc
}

// startReplica is startWriterWith that also returns a function stopping the replica (as a
// SIGTERM would); it returns once the replica has stopped.
func (p pipeline) startReplica(tb testing.TB, configure func(*Config), inspect func(*server.Server)) (*Service, func()) {
	tb.Helper()
	cfg := Config{
		NATSURL: p.natsURL, Streams: stream.DefaultConfig(),
		Server:       server.Config{Name: Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		GraphBaseURL: p.graphURL, GraphAuth: "none",
		MembershipGather: 2 * time.Second, // ConfigFromEnv's default
	}
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, testLogger(tb))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if inspect != nil {
		inspect(svc.server)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			tb.Errorf("entra-writer: %v", err)
		}
	})
	stop := func() { cancel(); wg.Wait() }
	tb.Cleanup(stop)
	return svc, stop
}

func (p pipeline) publish(tb testing.TB, objs []*orgsyncv1.DesiredObject) {
	tb.Helper()
	for _, obj := range objs {
		subject, err := subject.DirectorySubject(obj)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := p.pub.Publish(context.Background(), subject, fmt.Sprintf("%s:%d", subject, obj.GetRevision()), obj); err != nil {
			tb.Fatal(err)
		}
	}
}

// waitForResults waits until every object has a result; it fails on a FAILED one, and when no
// more objects settle for timeout.
func (p pipeline) waitForResults(tb testing.TB, count int, timeout time.Duration) map[string]*orgsyncv1.WriterResult {
	tb.Helper()
	// The deadline moves with progress: on a loaded machine a large load takes longer, but a
	// pipeline that stops moving for timeout is stuck whatever the load.
	deadline, lastSettled := time.Now().Add(timeout), -1
	for {
		results := map[string]*orgsyncv1.WriterResult{}
		err := stream.ReadLatest(context.Background(), p.js, stream.Results, "results.entra.>", func(msg jetstream.Msg) error {
			var r orgsyncv1.WriterResult
			if err := stream.Decode(msg, &r); err != nil {
				return err
			}
			results[strings.TrimPrefix(msg.Subject(), "results.")] = &r
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		for path, r := range results {
			if r.GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED {
				tb.Fatalf("%s failed: %s", path, r.GetErrorMessage())
			}
		}
		settled := 0
		for _, r := range results {
			// A user written while its manager had no account is not done until the link is.
			if !r.GetManagerLinkPending() {
				settled++
			}
		}
		if settled >= count {
			return results
		}
		if settled > lastSettled {
			deadline, lastSettled = time.Now().Add(timeout), settled
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d objects have results, none more for %v; without one: %s", len(results), count, timeout, p.missing(tb, results))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// missing names the published objects without a result, at most ten, to say what got stuck.
func (p pipeline) missing(tb testing.TB, results map[string]*orgsyncv1.WriterResult) string {
	tb.Helper()
	var paths []string
	err := stream.ReadLatest(context.Background(), p.js, stream.Directory, "dir.entra.>", func(msg jetstream.Msg) error {
		path := strings.TrimPrefix(msg.Subject(), "dir.")
		if results[path] == nil && len(paths) < 10 {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return err.Error()
	}
	return strings.Join(paths, ", ")
}

// testLogger discards the replica's log unless ENTRA_WRITER_TEST_LOG names a file to append it to,
// for looking into a run that got stuck.
func testLogger(tb testing.TB) *slog.Logger {
	name := os.Getenv("ENTRA_WRITER_TEST_LOG")
	if name == "" {
		return slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// reorganise moves n workers (never a unit head) to another unit, managed by that unit's head, and
// returns the desired states that say so — the moved users' revisions first, then the membership
// removals and additions in random order — with the fewest Graph writes that can apply them.
func (o org) reorganise(r *rand.Rand, n int) ([]*orgsyncv1.DesiredObject, int) {
	users := map[string]*orgsyncv1.DesiredUser{}
	for _, obj := range o.objects {
		if u := obj.GetUser(); u != nil {
			users[u.GetWorkerId()] = u
		}
	}
	var candidates []int
	for w := o.unit; w < o.workers; w++ {
		candidates = append(candidates, w)
	}
	r.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	var moved, memberships []*orgsyncv1.DesiredObject
	added := map[string]int{}
	for _, w := range candidates[:n] {
		id := fmt.Sprintf("E%06d", w)
		from := w % o.unit
		to := (from + 1 + r.IntN(o.unit-1)) % o.unit
		fromKey, toKey := fmt.Sprintf("unit-u%04d", from), fmt.Sprintf("unit-u%04d", to)
		user := proto.Clone(users[id]).(*orgsyncv1.DesiredUser)
		user.Department, user.ManagerWorkerId = fmt.Sprintf("Unit %d", to), fmt.Sprintf("E%06d", to)
		moved = append(moved, &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: id, Revision: 2,
			Object: &orgsyncv1.DesiredObject_User{User: user}})
		memberships = append(memberships,
			&orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: fromKey + "/" + id, Revision: 2, Tombstone: true,
				Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{
					GroupKey: fromKey, MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: id,
				}}},
			&orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Key: toKey + "/" + id, Revision: 1,
				Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{
					GroupKey: toKey, MemberKind: orgsyncv1.MemberKind_MEMBER_KIND_USER, MemberKey: id,
				}}})
		added[toKey]++
	}
	r.Shuffle(len(memberships), func(i, j int) { memberships[i], memberships[j] = memberships[j], memberships[i] })
	minimum := 3 * n // an update, a manager link and a removal per moved worker
	for _, count := range added {
		minimum += (count + 19) / 20
	}
	return append(moved, memberships...), minimum
}

// waitForRevisions waits until every object in objs has a result at its revision or later (the
// manager link written); it fails when no more objects get there for timeout.
func (p pipeline) waitForRevisions(tb testing.TB, objs []*orgsyncv1.DesiredObject, timeout time.Duration) {
	tb.Helper()
	// The deadline moves with progress: on a loaded machine a large load takes longer, but a
	// pipeline that stops moving for timeout is stuck whatever the load.
	deadline, lastWaiting := time.Now().Add(timeout), len(objs)+1
	for {
		results := p.waitForResults(tb, 0, timeout)
		waiting := 0
		for _, obj := range objs {
			path, err := subject.ObjectPath(obj)
			if err != nil {
				tb.Fatal(err)
			}
			if r := results[path]; r.GetRevision() < obj.GetRevision() || r.GetManagerLinkPending() {
				waiting++
			}
		}
		if waiting == 0 {
			return
		}
		if waiting < lastWaiting {
			deadline, lastWaiting = time.Now().Add(timeout), waiting
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d objects without a result at their revision, none more for %v", waiting, len(objs), timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
