package writer

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory/directorytest"
)

// firstDayFixture is a fake directory with a sender mailbox and a manager (M1), and a writer that
// sends first-day passes from the sender, on a clock the test moves.
type firstDayFixture struct {
	fake  *directorytest.Fake
	w     *Writer
	clock time.Time
}

func newFirstDayFixture(t *testing.T) *firstDayFixture {
	t.Helper()
	f := &firstDayFixture{fake: directorytest.NewFake(), clock: time.Date(2026, 6, 22, 8, 0, 0, 0, time.UTC)}
	ctx := t.Context()
	if _, err := f.fake.CreateUser(ctx, directory.UserAttributes{AccountEnabled: true, DisplayName: "Onboarding", UserPrincipalName: "onboarding@corp.example.com",
		MailNickname: "onboarding", EmployeeID: "S1", Mail: "onboarding@corp.example.com"}, "Xy7!initial-password-Q"); err != nil {
		t.Fatal(err)
	}
	f.w = f.newWriter()
	manager := user(1, "Sales")
	manager.Key = "M1"
	manager.GetUser().WorkerId, manager.GetUser().EmployeeId = "M1", "M1"
	manager.GetUser().UserPrincipalName, manager.GetUser().MailNickname, manager.GetUser().Mail = "mary@corp.example.com", "mary", "mary@corp.example.com"
	if _, err := f.w.Apply(ctx, manager, 1); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *firstDayFixture) newWriter() *Writer {
	w := New(f.fake, nil, slog.New(slog.DiscardHandler), Options{CredentialMailSender: "onboarding@corp.example.com"})
	w.now = func() time.Time { return f.clock }
	return w
}

// hire is user(revision) reporting to M1, whose first day began at firstDay.
func hire(revision uint64, firstDay time.Time) *orgsyncv1.DesiredObject {
	obj := user(revision, "Sales")
	obj.GetUser().ManagerWorkerId = "M1"
	obj.GetUser().FirstDayCredential = &orgsyncv1.FirstDayCredential{FirstDayAt: timestamppb.New(firstDay), LifetimeMinutes: 480, IsUsableOnce: true}
	return obj
}

func TestFirstDayPass(t *testing.T) {
	firstDay := time.Date(2026, 6, 22, 0, 0, 0, 0, time.UTC)

	t.Run("made on the day, sent to the manager, once across a restart", func(t *testing.T) {
		f := newFirstDayFixture(t)
		result, err := f.w.Apply(t.Context(), hire(1, firstDay), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(result.GetOperations(), OpDeliverToManager) || result.GetCredentialDelivery().GetRecipientWorkerId() != "M1" {
			t.Fatalf("result: operations %v, delivery %v", result.GetOperations(), result.GetCredentialDelivery())
		}
		mail := f.fake.SentMail()
		if len(mail) != 1 || !slices.Equal(mail[0].To, []string{"mary@corp.example.com"}) {
			t.Fatalf("mail sent: %+v, want one message to the manager", mail)
		}
		// A restarted writer seeded from RESULTS.
		restarted := f.newWriter()
		restarted.Seed(result, "entra.user.E1")
		f.clock = f.clock.Add(time.Hour)
		again, err := restarted.Apply(t.Context(), hire(2, firstDay), 1)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(again.GetOperations(), OpCreateAccessPass) || f.fake.Writes[OpCreateAccessPass] != 1 {
			t.Errorf("a second pass after the restart: operations %v, %d creations", again.GetOperations(), f.fake.Writes[OpCreateAccessPass])
		}
		if !again.GetCredentialDelivery().GetFirstDayAt().AsTime().Equal(firstDay) {
			t.Errorf("the delivery is not carried on the later result: %v", again.GetCredentialDelivery())
		}
	})

	t.Run("not before the day, and the message comes back when it begins", func(t *testing.T) {
		f := newFirstDayFixture(t)
		tomorrow := firstDay.Add(24 * time.Hour)
		result, err := f.w.Apply(t.Context(), hire(1, tomorrow), 1)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(result.GetOperations(), OpCreateAccessPass) || len(f.fake.SentMail()) != 0 {
			t.Errorf("a pass before the day: %v", result.GetOperations())
		}
		if wait := f.w.untilFirstDay(hire(1, tomorrow).GetUser()); wait != firstDayRecheck {
			t.Errorf("the message comes back in %v, want %v (capped)", wait, firstDayRecheck)
		}
		f.clock = tomorrow.Add(time.Minute)
		if result, err = f.w.Apply(t.Context(), hire(1, tomorrow), 2); err != nil || !slices.Contains(result.GetOperations(), OpCreateAccessPass) {
			t.Errorf("on the day: %v, %v; want the pass made", result.GetOperations(), err)
		}
		if wait := f.w.untilFirstDay(hire(1, tomorrow).GetUser()); wait != 0 {
			t.Errorf("after the delivery the message would come back in %v", wait)
		}
	})

	t.Run("none once the first day is over", func(t *testing.T) {
		f := newFirstDayFixture(t)
		f.clock = firstDay.Add(firstDayWindow)
		if _, err := f.w.Apply(t.Context(), hire(1, firstDay), 1); err != nil {
			t.Fatal(err)
		}
		if f.fake.Writes[OpCreateAccessPass] != 0 {
			t.Errorf("a pass for a first day that is over")
		}
	})

	t.Run("a hire without a manager is refused before any pass is made", func(t *testing.T) {
		f := newFirstDayFixture(t)
		orphan := hire(1, firstDay)
		orphan.GetUser().ManagerWorkerId = ""
		_, err := f.w.Apply(t.Context(), orphan, 1)
		if directory.ClassOf(err) != directory.ClassInvalid {
			t.Errorf("error %v, want invalid", err)
		}
		if f.fake.Writes[OpCreateAccessPass] != 0 {
			t.Errorf("a pass was made with nowhere to go")
		}
	})

	t.Run("a failed delivery deletes the pass and keeps no secret in the error", func(t *testing.T) {
		f := newFirstDayFixture(t)
		f.fake.Fail = func(op string) error {
			if op == "mail.send" {
				return &directory.Error{Op: op, Class: directory.ClassTransient, Status: 503, Code: "serviceNotAvailable", Message: "try later"}
			}
			return nil
		}
		_, err := f.w.Apply(t.Context(), proto.Clone(hire(1, firstDay)).(*orgsyncv1.DesiredObject), 1)
		if directory.ClassOf(err) != directory.ClassTransient {
			t.Fatalf("error %v, want the delivery's transient error", err)
		}
		if strings.Contains(err.Error(), "fake-pass-") {
			t.Errorf("the error holds the pass: %v", err)
		}
		userID := f.w.userIDs["E1"]
		if _, left := f.fake.AccessPass(userID); left {
			t.Errorf("the undelivered pass is still on the account")
		}
		if f.fake.Writes["user.temporary-access-pass.delete"] != 1 {
			t.Errorf("%d deletions, want 1", f.fake.Writes["user.temporary-access-pass.delete"])
		}
		f.fake.Fail = nil
		result, err := f.w.Apply(t.Context(), hire(1, firstDay), 2)
		if err != nil || !slices.Contains(result.GetOperations(), OpDeliverToManager) {
			t.Errorf("the retry: %v, %v; want the pass delivered", result.GetOperations(), err)
		}
	})

	t.Run("no pass without a configured sender, nor in a report-only drift pass", func(t *testing.T) {
		f := newFirstDayFixture(t)
		unconfigured := New(f.fake, nil, slog.New(slog.DiscardHandler))
		unconfigured.now = func() time.Time { return f.clock }
		if _, err := unconfigured.Apply(t.Context(), hire(1, firstDay), 1); err != nil {
			t.Fatal(err)
		}
		f.w.dir = recordOnly{dir: f.fake}
		if _, err := f.w.Apply(t.Context(), hire(1, firstDay), 1); err != nil {
			t.Fatal(err)
		}
		if f.fake.Writes[OpCreateAccessPass] != 0 || len(f.fake.SentMail()) != 0 {
			t.Errorf("a pass was made: %d creations, %d messages", f.fake.Writes[OpCreateAccessPass], len(f.fake.SentMail()))
		}
	})
}
