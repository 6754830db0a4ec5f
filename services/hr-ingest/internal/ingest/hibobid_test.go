package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

// TestHiBobWorkerIDFromAnotherField: Bob's ids (19 digits) do not fit Entra's and AD's 16-character
// employeeId; with api.workerIdField the worker id, and the manager's, come from that field.
func TestHiBobWorkerIDFromAnotherField(t *testing.T) {
	const (
		employee = "3332883884017713238"
		manager  = "3332883884017700001"
	)
	bob := vendortest.NewHiBob(t, hibobUser, hibobToken)
	cfg := source.Config{Name: "bob", Kind: source.KindHiBob, Keys: [][]byte{[]byte(hibobSecretText)},
		API: source.API{BaseURL: bob.BaseURL(), User: hibobUser, Token: hibobToken, WorkerIDField: "work.employeeIdInCompany"}}
	notification := func(employeeID, kind string) *http.Request {
		body := fmt.Sprintf(`{"companyId":601234,"type":%q,"triggeredBy":"1","triggeredAt":"2026-03-01T08:59:00Z","version":"v2","data":{"employeeId":%q}}`, kind, employeeID)
		return request(http.MethodPost, "/v1/sources/bob/events", "application/json", body, func(r *http.Request) {
			r.Header.Set(hibob.HeaderSignature, hibob.Sign([]byte(hibobSecretText), []byte(body)))
		})
	}
	parkedReason := func(t *testing.T, f pullFixture, employeeID string) string {
		t.Helper()
		eventually(t, "the notification is parked", func() bool { return f.status(t, "bob").Parked == 1 })
		s, err := f.js.Stream(t.Context(), notify.Stream)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := s.GetLastMsgForSubject(t.Context(), notify.ParkedSubject("bob", employeeID))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Header.Get(notify.ReasonHeader)
	}

	t.Run("the worker and the manager are named by the field", func(t *testing.T) {
		f := newPullFixture(t, cfg)
		bob.Put(manager, `{"id":"`+manager+`","firstName":"Boss","surname":"One","work":{"employeeIdInCompany":"E0042"}}`)
		bob.Put(employee, `{"id":"`+employee+`","firstName":"Jane","surname":"Doe","email":"jane.doe@example.com",
			"work":{"title":"Engineer","reportsTo":{"id":"`+manager+`"},"employeeIdInCompany":{"value":"E1001"}},"internal":{"status":"Active"}}`)
		if rec := f.do(t, notification(employee, hibob.EventUpdated)); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		eventually(t, "the worker's event is in stream HR", func() bool { return len(f.storedEvents(t)) == 1 })
		want := []*orgsyncv1.Worker{{WorkerId: "E1001", Name: &orgsyncv1.PersonName{GivenName: "Jane", FamilyName: "Doe"},
			WorkEmail: "jane.doe@example.com", JobTitle: "Engineer", ManagerWorkerId: "E0042",
			EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
			CustomAttributes: map[string]string{"hibob.id": employee}}}
		if diff := cmp.Diff(want, f.workers(t), protocmp.Transform()); diff != "" {
			t.Errorf("workers (-want +got):\n%s", diff)
		}
	})
	t.Run("an employee without the field is parked, naming it", func(t *testing.T) {
		f := newPullFixture(t, cfg)
		bob.Put("3332883884017799999", `{"id":"3332883884017799999","firstName":"No","surname":"Number","work":{}}`)
		if rec := f.do(t, notification("3332883884017799999", hibob.EventUpdated)); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		reason := parkedReason(t, f, "3332883884017799999")
		if !strings.HasPrefix(reason, notify.ClassInvalid) || !strings.Contains(reason, "/work/employeeIdInCompany") {
			t.Errorf("parked reason %q, want %s naming /work/employeeIdInCompany", reason, notify.ClassInvalid)
		}
		if n := len(f.storedEvents(t)); n != 0 {
			t.Errorf("stream HR holds %d events, want none", n)
		}
	})
	t.Run("a deleted employee cannot be named and is parked, not published under Bob's id", func(t *testing.T) {
		f := newPullFixture(t, cfg)
		if rec := f.do(t, notification("3332883884017788888", hibob.EventDeleted)); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if reason := parkedReason(t, f, "3332883884017788888"); !strings.HasPrefix(reason, notify.ClassNotFound) {
			t.Errorf("parked reason %q, want %s", reason, notify.ClassNotFound)
		}
		if n := len(f.storedEvents(t)); n != 0 {
			t.Errorf("stream HR holds %d events, want none", n)
		}
	})
	t.Run("without the option Bob's 19-digit id is refused as too long", func(t *testing.T) {
		plain := cfg
		plain.API.WorkerIDField = ""
		f := newPullFixture(t, plain)
		if rec := f.do(t, notification(employee, hibob.EventUpdated)); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if reason := parkedReason(t, f, employee); !strings.Contains(reason, "/id") {
			t.Errorf("parked reason %q, want it to name /id", reason)
		}
	})
}
