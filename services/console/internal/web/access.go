package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// The forms for delegations (operator, on the worker page) and helpdesk requests (asked by an
// operator on the worker page, decided by an approver on the approvals page). Each posts to
// org-model with the person's own token, so org-model checks the role again and records the
// person as creator, requester or approver; a requester's own approval is refused there.

// accessView is what the worker page shows of delegations and helpdesk requests.
type accessView struct {
	Delegations []*orgsyncv1.Delegation
	Requests    []*orgsyncv1.AccessRequest
	// Err names the gRPC code when they could not be read.
	Err string
}

// workerAccess reads the delegations to or from a worker and the helpdesk requests for them.
func (h *Handler) workerAccess(r *http.Request, who person, workerID string) accessView {
	var view accessView
	delegations, err := h.cfg.OrgModel.ListDelegations(r.Context(), &orgsyncv1.ListDelegationsRequest{WorkerId: workerID}, who.call())
	if err != nil {
		view.Err = codeOf(err)
		return view
	}
	view.Delegations = delegations.GetDelegations()
	requests, err := h.cfg.OrgModel.ListAccessRequests(r.Context(), &orgsyncv1.ListAccessRequestsRequest{}, who.call())
	if err != nil {
		view.Err = codeOf(err)
		return view
	}
	for _, request := range requests.GetRequests() {
		if request.GetWorkerId() == workerID {
			view.Requests = append(view.Requests, request)
		}
	}
	return view
}

// formDate reads a date field (YYYY-MM-DD, as an <input type="date"> sends it); nil when empty
// or not a date, which org-model then names as missing.
func formDate(r *http.Request, field string) *orgsyncv1.Date {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(r.PostFormValue(field)))
	if err != nil {
		return nil
	}
	return &orgsyncv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}
}

func (h *Handler) serveCreateDelegation(w http.ResponseWriter, r *http.Request, who person) {
	workerID := r.PathValue("id")
	req := &orgsyncv1.CreateDelegationRequest{DelegateWorkerId: workerID, StartDate: formDate(r, "start"), EndDate: formDate(r, "end"),
		Reason: r.PostFormValue("reason")}
	from := strings.TrimSpace(r.PostFormValue("from"))
	if r.PostFormValue("from_kind") == "unit" {
		req.FromOrgUnitId = from
	} else {
		req.FromWorkerId = from
	}
	resp, err := h.cfg.OrgModel.CreateDelegation(r.Context(), req, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "CreateDelegation", err)
		return
	}
	h.cfg.Logger.InfoContext(r.Context(), "delegation created")
	http.Redirect(w, r, "/workers/"+urlPath(workerID)+"?done="+urlQuery("delegation "+resp.GetDelegation().GetDelegationId()+" created"), http.StatusSeeOther)
}

func (h *Handler) serveEndDelegation(w http.ResponseWriter, r *http.Request, who person) {
	resp, err := h.cfg.OrgModel.EndDelegation(r.Context(), &orgsyncv1.EndDelegationRequest{DelegationId: r.PathValue("id")}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "EndDelegation", err)
		return
	}
	d := resp.GetDelegation()
	h.cfg.Logger.InfoContext(r.Context(), "delegation ended")
	http.Redirect(w, r, "/workers/"+urlPath(d.GetDelegateWorkerId())+"?done="+urlQuery("delegation "+d.GetDelegationId()+" ended"), http.StatusSeeOther)
}

// serveRequestAccess asks for a helpdesk action: a temporary membership (the form's group and
// until), or, with kind "tap" or "password-reset", a credential that org-model's writers deliver
// to the configured channel, never to the person asking.
func (h *Handler) serveRequestAccess(w http.ResponseWriter, r *http.Request, who person) {
	workerID := r.PathValue("id")
	req := &orgsyncv1.RequestAccessRequest{WorkerId: workerID, Reason: r.PostFormValue("reason")}
	switch kind := r.PostFormValue("kind"); kind {
	case "", "membership":
		req.Kind = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP
		req.GroupKey, req.EndDate = strings.TrimSpace(r.PostFormValue("group")), formDate(r, "until")
	case "tap":
		req.Kind = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS
		if text := strings.TrimSpace(r.PostFormValue("lifetime")); text != "" {
			minutes, err := strconv.ParseInt(text, 10, 32)
			if err != nil {
				h.fail(w, r, who, http.StatusBadRequest, fmt.Sprintf("lifetime %q is not a number of minutes", text))
				return
			}
			req.LifetimeMinutes = int32(minutes)
		}
	case "password-reset":
		req.Kind = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET
	default:
		h.fail(w, r, who, http.StatusBadRequest, fmt.Sprintf("kind %q is not membership, tap or password-reset", kind))
		return
	}
	resp, err := h.cfg.OrgModel.RequestAccess(r.Context(), req, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "RequestAccess", err)
		return
	}
	h.cfg.Logger.InfoContext(r.Context(), "access requested")
	http.Redirect(w, r, "/workers/"+urlPath(workerID)+"?done="+urlQuery("request "+resp.GetRequest().GetRequestId()+" waits for a second person's approval"), http.StatusSeeOther)
}

func (h *Handler) serveDecideRequest(decision orgsyncv1.Decision) func(http.ResponseWriter, *http.Request, person) {
	return func(w http.ResponseWriter, r *http.Request, who person) {
		resp, err := h.cfg.OrgModel.DecideAccessRequest(r.Context(), &orgsyncv1.DecideAccessRequestRequest{RequestId: r.PathValue("id"), Decision: decision}, who.call())
		if err != nil {
			h.grpcFail(w, r, who, "DecideAccessRequest", err)
			return
		}
		h.cfg.Logger.InfoContext(r.Context(), "access request decided", "decision", decision.String())
		request := resp.GetRequest()
		http.Redirect(w, r, "/approvals?done="+urlQuery("request "+request.GetRequestId()+" "+requestState(request.GetState())), http.StatusSeeOther)
	}
}

// requestWhat says what a helpdesk request asks for.
func requestWhat(r *orgsyncv1.AccessRequest) string {
	switch r.GetKind() {
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS:
		return fmt.Sprintf("Temporary Access Pass (%d min, one sign-in)", r.GetLifetimeMinutes())
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET:
		return "password reset"
	}
	return "membership of " + r.GetGroupKey()
}

// credentialOutcome says how an approved credential request's credential stands: where it went
// (never what), or why it did not; "" when there is nothing to say.
func credentialOutcome(r *orgsyncv1.AccessRequest) string {
	if d := r.GetCredentialDelivery(); d != nil {
		channel := "the manager's mailbox"
		if d.GetChannel() == orgsyncv1.CredentialChannel_CREDENTIAL_CHANNEL_WEBHOOK {
			channel = "the webhook " + d.GetChannelName()
		}
		return "delivered to " + channel + " at " + d.GetDeliveredAt().AsTime().UTC().Format("2006-01-02 15:04 UTC")
	}
	return r.GetCredentialError()
}

func requestState(s orgsyncv1.AccessRequestState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "ACCESS_REQUEST_STATE_"))
}

func delegationState(s orgsyncv1.DelegationState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "DELEGATION_STATE_"))
}

// urlPath escapes one path segment.
func urlPath(s string) string { return url.PathEscape(s) }

// principalName names a principal for people: the OIDC subject, or the static token's name.
func principalName(p *orgsyncv1.Principal) string {
	switch {
	case p.GetTokenName() != "":
		return "token " + p.GetTokenName()
	case p.GetSubject() != "":
		return p.GetSubject()
	}
	return ""
}
