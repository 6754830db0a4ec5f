package service

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/orgsync/orgsync/pkg/auditlog"
	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
)

func withPolicy(t *testing.T, yaml string) func(*Config) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(cfg *Config) { cfg.PolicyFile = path }
}

func withClock(c clock.Clock) func(*Config) { return func(cfg *Config) { cfg.Clock = c } }

func dated(event *orgsyncv1.HREvent, edit func(*orgsyncv1.Worker)) *orgsyncv1.HREvent {
	edit(event.GetWorker())
	return event
}

func hrDate(t time.Time) *orgsyncv1.Date {
	return &orgsyncv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}

// approverSubject is the OIDC subject of the tests' client: an approver, who may also read.
const approverSubject = "approver-7f3a"

// client is a query API client authenticated as an approver with an OIDC token.
func (h harness) client(t *testing.T, svc *Service) orgsyncv1grpc.OrgModelServiceClient {
	t.Helper()
	return h.clientWith(t, svc, h.issuer.Token(approverSubject, auth.Approver))
}

// clientWith is a query API client sending token ("" sends none).
func (h harness) clientWith(t *testing.T, svc *Service, token string) orgsyncv1grpc.OrgModelServiceClient {
	t.Helper()
	options := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		options = append(options, grpc.WithPerRPCCredentials(auth.Bearer(token)))
	}
	conn, err := grpc.NewClient(svc.GRPCAddr(), options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return orgsyncv1grpc.NewOrgModelServiceClient(conn)
}

func enabled(h harness, t *testing.T, workerID string) string {
	obj, ok := h.directory(t)["dir.entra.user."+workerID]
	switch {
	case !ok:
		return "absent"
	case obj.GetUser().GetAccountEnabled():
		return "enabled"
	default:
		return "disabled"
	}
}

func TestSchedulerAppliesTransitionsWhenDueAndAfterRestart(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	policyOption := withPolicy(t, "upnDomains: [corp.example.com]\ntimezone: UTC\nlifecycle: {preCreateDays: 7}\n")
	h.hr(t, "u1", unit("sales", "Sales", ""))
	h.hr(t, "w1", dated(worker("E1", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0), func(w *orgsyncv1.Worker) {
		w.StartDate = hrDate(t0.AddDate(0, 0, 3))
	}))
	h.hr(t, "w2", dated(worker("E2", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, t0), func(w *orgsyncv1.Worker) {
		w.EndDate = hrDate(t0.AddDate(0, 0, 10))
	}))

	_, stop := h.start(t, policyOption, withClock(fake))
	if got := []string{enabled(h, t, "E1"), enabled(h, t, "E2")}; !cmp.Equal(got, []string{"disabled", "enabled"}) {
		t.Fatalf("at start: E1, E2 = %v; want the future hire pre-created disabled", got)
	}
	// The start date comes: the scheduler enables the account without any HR event.
	fake.Set(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC))
	eventually(t, func() bool { return enabled(h, t, "E1") == "enabled" })
	stop()

	// The leaver's end date passes while org-model is down; the restart applies it.
	fake.Set(time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC))
	h.start(t, policyOption, withClock(fake))
	if got := enabled(h, t, "E2"); got != "disabled" {
		t.Errorf("after restart, the leaver is %s", got)
	}
	if got := h.directory(t)["dir.entra.member.unit-sales.E2"]; !got.GetTombstone() {
		t.Errorf("leaver's membership = %v, want a tombstone", got)
	}
}

func TestGuardHoldsSnapshotThatDropsWorkers(t *testing.T) {
	for _, decision := range []string{"approve", "reject"} {
		t.Run(decision, func(t *testing.T) {
			held := heldBatch(t, "s1-"+decision)
			h, stop, api, fake, batch := held.h, held.stop, held.api, held.fake, held.batch
			if batch.GetDisables() != 12 || batch.GetRemovals() != 12 || batch.GetCause().GetReason() != "HR snapshot end" {
				t.Errorf("batch: %d disables, %d removals, cause %q", batch.GetDisables(), batch.GetRemovals(), batch.GetCause().GetReason())
			}
			if got := enabled(h, t, "E39"); got != "enabled" {
				t.Fatalf("held change was published: E39 is %s", got)
			}
			status, err := api.GetStatus(t.Context(), &orgsyncv1.GetStatusRequest{})
			if err != nil || status.GetPendingBatches() != 1 {
				t.Errorf("status: %v, %v", status, err)
			}

			// Held changes are not lost in a restart: the reconcile recomputes them and the guard
			// holds them again.
			stop()
			svc, stop := h.start(t, withClock(fake))
			api = h.client(t, svc)
			pending, err := api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
			if err != nil || len(pending.GetBatches()) != 1 || pending.GetBatches()[0].GetDisables() != 12 {
				t.Fatalf("after restart: %v, %v", pending, err)
			}
			batch = pending.GetBatches()[0]
			if got := enabled(h, t, "E39"); got != "enabled" {
				t.Fatalf("held change was published at restart: E39 is %s", got)
			}

			if decision == "approve" {
				resp, err := api.Approve(t.Context(), &orgsyncv1.ApproveRequest{BatchId: batch.GetBatchId()})
				if err != nil || resp.GetPublished() != 24 {
					t.Fatalf("approve: %v, %v", resp, err)
				}
				if got := []string{enabled(h, t, "E39"), enabled(h, t, "E00")}; !cmp.Equal(got, []string{"disabled", "enabled"}) {
					t.Errorf("after approval E39, E00 = %v", got)
				}
				approver := &orgsyncv1.Principal{Subject: approverSubject, Issuer: h.issuer.URL()}
				if diff := cmp.Diff(approver, resp.GetBatch().GetDecidedBy(), protocmp.Transform()); diff != "" || resp.GetBatch().GetDecision() != orgsyncv1.Decision_DECISION_APPROVED {
					t.Errorf("approved batch %v, decided by (-want +got):\n%s", resp.GetBatch().GetDecision(), diff)
				}
				// The released desired state names the batch and the approver as fields.
				released := h.directory(t)["dir.entra.user.E39"]
				if released.GetCause().GetApprovalBatchId() != batch.GetBatchId() {
					t.Errorf("released cause batch = %q, want %q", released.GetCause().GetApprovalBatchId(), batch.GetBatchId())
				}
				if diff := cmp.Diff(approver, released.GetCause().GetApprovedBy(), protocmp.Transform()); diff != "" {
					t.Errorf("released cause approved_by (-want +got):\n%s", diff)
				}
				// A writer's audit record of that write (stamped as the writers stamp it) carries them
				// into ListAudit.
				result := &orgsyncv1.WriterResult{Target: orgsyncv1.Target_TARGET_ENTRA, Kind: orgsyncv1.ObjectKind_OBJECT_KIND_USER,
					Key: "E39", Revision: released.GetRevision(), Outcome: orgsyncv1.Outcome_OUTCOME_APPLIED, Operations: []string{"user.update"}}
				auditlog.Stamp(t.Context(), result, released, nil)
				if _, err := h.pub.Publish(t.Context(), "audit.entra.user.E39", "audit-E39", result); err != nil {
					t.Fatal(err)
				}
				var records []*orgsyncv1.AuditRecord
				eventually(t, func() bool {
					resp, err := api.ListAudit(t.Context(), &orgsyncv1.ListAuditRequest{WorkerId: "E39"})
					records = resp.GetRecords()
					return err == nil && len(records) == 1
				})
				if records[0].GetApprovalBatchId() != batch.GetBatchId() {
					t.Errorf("audit record batch = %q, want %q", records[0].GetApprovalBatchId(), batch.GetBatchId())
				}
				if diff := cmp.Diff(approver, records[0].GetApprovedBy(), protocmp.Transform()); diff != "" {
					t.Errorf("audit record approved_by (-want +got):\n%s", diff)
				}
			} else {
				resp, err := api.Reject(t.Context(), &orgsyncv1.RejectRequest{BatchId: batch.GetBatchId()})
				if err != nil || resp.GetDropped() != 24 {
					t.Fatalf("reject: %v, %v", resp, err)
				}
				if got := enabled(h, t, "E39"); got != "enabled" {
					t.Errorf("after rejection E39 is %s", got)
				}
				if resp.GetBatch().GetDecision() != orgsyncv1.Decision_DECISION_REJECTED || resp.GetBatch().GetDecidedBy().GetSubject() != approverSubject {
					t.Errorf("rejected batch: %v", resp.GetBatch())
				}
				// The rejection is durable: a restart does not hold the same changes again.
				stop()
				svc, _ := h.start(t, withClock(fake))
				api = h.client(t, svc)
				if got := enabled(h, t, "E39"); got != "enabled" {
					t.Errorf("after rejection and restart E39 is %s", got)
				}
			}
			after, err := api.ListPending(t.Context(), &orgsyncv1.ListPendingRequest{})
			if err != nil || len(after.GetBatches()) != 0 {
				t.Errorf("pending after %s: %v, %v", decision, after, err)
			}
			// The decision is listed with who made it (after a restart too, for the rejection).
			if decided := after.GetDecided(); len(decided) != 1 || decided[0].GetBatchId() != batch.GetBatchId() ||
				decided[0].GetDecidedBy().GetSubject() != approverSubject || decided[0].GetDecidedBy().GetIssuer() != h.issuer.URL() {
				t.Errorf("decided after %s: %v", decision, decided)
			}
			// Everything else keeps flowing: a new hire is published.
			h.hr(t, "hire", worker("E99", "sales", orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE, heldT0.Add(time.Hour)))
			eventually(t, func() bool { return enabled(h, t, "E99") == "enabled" })
		})
	}
}
