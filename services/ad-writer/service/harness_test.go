package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/sambadc"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// dc is the one Samba domain controller this package's tests share, adminPassword its
// administrator's password.
var (
	dc            *sambadc.DC
	adminPassword string
)

func TestMain(m *testing.M) { os.Exit(runWithDC(m)) }

// runWithDC runs the tests with a freshly provisioned DC, waiting for the machine's DC lock while
// another test binary or run holds it.
func runWithDC(m *testing.M) int {
	var err error
	dc, err = sambadc.Start(context.Background(), sambadc.Options{Waiting: func(lockFile string) {
		fmt.Fprintln(os.Stderr, "waiting for the Samba AD DC: another test or run holds", lockFile)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the Samba AD DC:", err)
		return 1
	}
	defer func() {
		if err := dc.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the Samba AD DC:", err)
		}
	}()
	if adminPassword, err = dc.Password(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// domain is one test's corner of the shared DC: its own OU tree, an embedded JetStream, an admin
// LDAP client for checking, and the passwords the writer generated.
type domain struct {
	root, users, groups, leavers string
	admin                        *ldap.Client
	js                           jetstream.JetStream
	pub                          *stream.Publisher
	natsURL                      string
	generated                    chan string
}

// newDomain creates OU=<name> with Users, Groups, Leavers and the extra OUs below it.
func newDomain(tb testing.TB, name string, extraOUs ...string) *domain {
	tb.Helper()
	admin, err := ldap.New(ldap.Config{URL: dc.URL, BindDN: dc.BindDN, BindPassword: adminPassword, CAFile: dc.CAFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(admin.Close)
	d := &domain{root: "OU=" + name + "," + dc.BaseDN, admin: admin, generated: make(chan string, 10000)}
	d.users, d.groups, d.leavers = d.ou("Users"), d.ou("Groups"), d.ou("Leavers")
	ctx := context.Background()
	for _, dn := range append([]string{d.root, d.users, d.groups, d.leavers}, func() []string {
		var out []string
		for _, ou := range extraOUs {
			out = append(out, d.ou(ou))
		}
		return out
	}()...) {
		if err := admin.AddEntry(ctx, dn, map[string][]string{"objectClass": {"top", "organizationalUnit"}}); err != nil && ldap.Code(err) != ldap.ResultEntryExists {
			tb.Fatalf("creating %s: %v", dn, err)
		}
	}
	natsSrv := streamtest.Start(tb)
	d.js = natsSrv.JS
	d.pub = stream.NewPublisher(d.js)
	d.natsURL = natsSrv.ClientURL()
	return d
}

func (d *domain) ou(name string) string { return "OU=" + name + "," + d.root }

func (d *domain) config(configure func(*Config)) Config {
	cfg := Config{
		NATSURL: d.natsURL, Streams: stream.DefaultConfig(),
		Server: server.Config{Name: Name, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		LDAP:   ldap.Config{URL: dc.URL, BindDN: dc.BindDN, BindPassword: adminPassword, CAFile: dc.CAFile, Timeout: 10 * time.Second},
	}
	cfg.Writer.BaseDN, cfg.Writer.UsersOU, cfg.Writer.GroupsOU, cfg.Writer.LeaversOU = dc.BaseDN, d.users, d.groups, d.leavers
	cfg.Writer.ManagedOUs = []string{d.root}
	cfg.Writer.NewPassword = func() (string, error) {
		password := fmt.Sprintf("Init-%d-pass!X", time.Now().UnixNano())
		d.generated <- password
		return password, nil
	}
	if configure != nil {
		configure(&cfg)
	}
	return cfg
}

// startWriter starts an ad-writer replica and returns it with a function that stops it.
func (d *domain) startWriter(tb testing.TB, configure func(*Config)) (*Service, func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, d.config(configure), slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			tb.Errorf("ad-writer: %v", err)
		}
	})
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	tb.Cleanup(stop)
	return svc, stop
}

func (d *domain) publish(tb testing.TB, objs ...*orgsyncv1.DesiredObject) {
	tb.Helper()
	for _, obj := range objs {
		obj.Target = orgsyncv1.Target_TARGET_AD
		subject, err := subject.DirectorySubject(obj)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := d.pub.Publish(context.Background(), subject, fmt.Sprintf("%s:%d", subject, obj.GetRevision()), obj); err != nil {
			tb.Fatal(err)
		}
	}
}

// results returns the latest result per object path.
func (d *domain) results(tb testing.TB) map[string]*orgsyncv1.WriterResult {
	tb.Helper()
	results := map[string]*orgsyncv1.WriterResult{}
	err := stream.ReadLatest(context.Background(), d.js, stream.Results, "results.ad.>", func(msg jetstream.Msg) error {
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
	return results
}

// waitFor waits until every object has a result for its revision; it fails on FAILED.
func (d *domain) waitFor(tb testing.TB, timeout time.Duration, objs ...*orgsyncv1.DesiredObject) map[string]*orgsyncv1.WriterResult {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		results := d.results(tb)
		missing := 0
		for _, obj := range objs {
			path, _ := subject.ObjectPath(obj)
			r := results[path]
			if r.GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED {
				tb.Fatalf("%s failed: %s", path, r.GetErrorMessage())
			}
			if r == nil || r.GetRevision() < obj.GetRevision() {
				missing++
			}
		}
		if missing == 0 {
			return results
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d objects without a result after %v", missing, len(objs), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// entry reads the managed object with the given employeeID or sAMAccountName.
func (d *domain) entry(tb testing.TB, filter string, attrs ...string) *ldap.Entry {
	tb.Helper()
	entries, err := d.admin.Search(context.Background(), dc.BaseDN, filter, append(attrs, "objectGUID"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(entries) != 1 {
		tb.Fatalf("%s: %d entries", filter, len(entries))
	}
	return entries[0]
}

func (d *domain) members(tb testing.TB, groupDN string) []string {
	tb.Helper()
	members, err := d.admin.Members(context.Background(), groupDN)
	if err != nil {
		tb.Fatal(err)
	}
	return members
}

func user(id string, revision uint64, configure func(*orgsyncv1.DesiredUser)) *orgsyncv1.DesiredObject {
	u := &orgsyncv1.DesiredUser{
		WorkerId: id, EmployeeId: id, AccountEnabled: true, DisplayName: "Worker " + id, GivenName: "Worker", Surname: id,
		UserPrincipalName: strings.ToLower(id) + "@corp.example.test", MailNickname: strings.ToLower(id),
		Mail: strings.ToLower(id) + "@corp.example.test", JobTitle: "Engineer", Department: "Sales", CompanyName: "Example",
		OfficeLocation: "London", BusinessPhone: "+44 20 7946 0000",
		Attributes: map[string]string{"sAMAccountName": strings.ToLower(id)},
	}
	if configure != nil {
		configure(u)
	}
	return &orgsyncv1.DesiredObject{Key: id, Revision: revision, Object: &orgsyncv1.DesiredObject_User{User: u}}
}

func group(key string, revision uint64) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Key: key, Revision: revision, Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{
		GroupKey: key, Kind: orgsyncv1.GroupKind_GROUP_KIND_ORG_UNIT, DisplayName: "Org - " + key, Description: "Members of " + key,
	}}}
}

func member(groupKey string, kind orgsyncv1.MemberKind, memberKey string, revision uint64, tombstone bool) *orgsyncv1.DesiredObject {
	return &orgsyncv1.DesiredObject{Key: groupKey + "/" + memberKey, Revision: revision, Tombstone: tombstone,
		Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{GroupKey: groupKey, MemberKind: kind, MemberKey: memberKey}}}
}
