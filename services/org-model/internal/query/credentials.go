package query

import (
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/access"
)

// recordHelpdeskDelivery keeps the helpdesk delivery a user's result reports, by request id. A
// writer carries its last delivery on every later result of the user, so after a restart (which
// reads only the newest result per object) the newest delivery per worker is known.
func (r *Results) recordHelpdeskDelivery(result *orgsyncv1.WriterResult) {
	delivery := result.GetHelpdeskDelivery()
	if delivery.GetAccessRequestId() == "" {
		return
	}
	r.helpdeskDeliveries[delivery.GetAccessRequestId()] = delivery
}

// withCredentialOutcome adds to an approved credential request how its credential stands:
// delivered (where, never what), failed with entra-writer's reason, or not made once the window
// is over. A request whose outcome is not known (a newer request's delivery is the only one
// reported since org-model started) is left as it is.
func (s *Server) withCredentialOutcome(r *orgsyncv1.AccessRequest) *orgsyncv1.AccessRequest {
	switch r.GetKind() {
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS, orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET:
	default:
		return r
	}
	if r.GetState() != orgsyncv1.AccessRequestState_ACCESS_REQUEST_STATE_APPROVED || s.Results == nil {
		return r
	}
	s.Results.mu.RLock()
	delivery := s.Results.helpdeskDeliveries[r.GetRequestId()]
	s.Results.mu.RUnlock()
	if delivery != nil {
		r.CredentialDelivery = delivery
		return r
	}
	newest := s.Results.Get(subject.UserPath(orgsyncv1.Target_TARGET_ENTRA, r.GetWorkerId()))
	approvedAt := r.GetDecidedAt().AsTime()
	switch {
	case newest.GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED && newest.GetCause().GetAccessRequestId() == r.GetRequestId():
		r.CredentialError = newest.GetErrorMessage()
	case newest.GetHelpdeskDelivery() != nil && !newest.GetHelpdeskDelivery().GetDeliveredAt().AsTime().Before(approvedAt):
		// A later request's credential was delivered since: this one's outcome is not known here.
	case s.Clock != nil && !s.Clock.Now().Before(approvedAt.Add(access.CredentialWindow)):
		r.CredentialError = "not made: entra-writer did not deliver it within " + access.CredentialWindow.String() + " of the approval; ask again"
	}
	return r
}
