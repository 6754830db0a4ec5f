package web

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// maxTreeUnitsWithGroups is the size of tree up to which the organisation page shows each unit's
// groups (one GetOrgUnit per unit); a larger tree shows them on the unit's own page.
const maxTreeUnitsWithGroups = 300

// treeNode is one unit on the organisation page.
type treeNode struct {
	ID, Name, ManagerID, ManagerName string
	HeadCount                        int32
	Groups                           []groupLink
	Children                         []*treeNode
	// Match says the search matched this unit; Open keeps it expanded.
	Match, Open bool
}

type groupLink struct{ Target, Key string }

func (h *Handler) serveOrg(w http.ResponseWriter, r *http.Request, who person) {
	ctx := r.Context()
	tree, err := h.cfg.OrgModel.GetOrgTree(ctx, &orgsyncv1.GetOrgTreeRequest{}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "GetOrgTree", err)
		return
	}
	count := 0
	var walk func(n *orgsyncv1.OrgTreeNode)
	walk = func(n *orgsyncv1.OrgTreeNode) {
		count++
		for _, c := range n.GetChildren() {
			walk(c)
		}
	}
	for _, root := range tree.GetRoots() {
		walk(root)
	}
	withGroups := count <= maxTreeUnitsWithGroups
	names := h.workerNames(r, who)
	query := strings.TrimSpace(r.URL.Query().Get("q"))
	var build func(n *orgsyncv1.OrgTreeNode) *treeNode
	build = func(n *orgsyncv1.OrgTreeNode) *treeNode {
		node := &treeNode{ID: n.GetOrgUnitId(), Name: n.GetName(), ManagerID: n.GetManagerWorkerId(),
			ManagerName: names[n.GetManagerWorkerId()], HeadCount: n.GetWorkerCount()}
		if withGroups {
			if unit, err := h.cfg.OrgModel.GetOrgUnit(r.Context(), &orgsyncv1.GetOrgUnitRequest{OrgUnitId: n.GetOrgUnitId()}, who.call()); err == nil {
				node.Groups = h.groupLinks(unit.GetGroupKeys())
			}
		}
		node.Match = query != "" && (containsFold(node.Name, query) || containsFold(node.ID, query) || containsFold(node.ManagerName, query))
		for _, c := range n.GetChildren() {
			child := build(c)
			node.Children = append(node.Children, child)
			node.Open = node.Open || child.Match || child.Open
		}
		return node
	}
	var roots []*treeNode
	for _, root := range tree.GetRoots() {
		node := build(root)
		node.Open = true
		roots = append(roots, node)
	}
	var workers []*orgsyncv1.WorkerSummary
	if query != "" {
		workers = h.searchWorkers(r, who, query, 50)
	}
	h.render(w, r, http.StatusOK, "org", who, "Organisation", map[string]any{
		"Roots": roots, "Query": query, "Cycles": tree.GetCycleOrgUnitIds(), "Workers": workers, "GroupsShown": withGroups,
	})
}

func (h *Handler) groupLinks(keys []string) []groupLink {
	var links []groupLink
	for _, key := range keys {
		for _, target := range h.cfg.Targets {
			links = append(links, groupLink{Target: targetName(target), Key: key})
		}
	}
	return links
}

// workerNames maps worker ids to display names, for managers (one page of up to 1000 workers).
func (h *Handler) workerNames(r *http.Request, who person) map[string]string {
	names := map[string]string{}
	resp, err := h.cfg.OrgModel.ListWorkers(r.Context(), &orgsyncv1.ListWorkersRequest{PageSize: 1000}, who.call())
	if err != nil {
		return names
	}
	for _, worker := range resp.GetWorkers() {
		names[worker.GetWorkerId()] = worker.GetDisplayName()
	}
	return names
}

// searchWorkers finds workers whose id, name, title or UPN contain query, reading at most 20
// pages of 1000.
func (h *Handler) searchWorkers(r *http.Request, who person, query string, limit int) []*orgsyncv1.WorkerSummary {
	var found []*orgsyncv1.WorkerSummary
	token := ""
	for range 20 {
		resp, err := h.cfg.OrgModel.ListWorkers(r.Context(), &orgsyncv1.ListWorkersRequest{PageSize: 1000, PageToken: token}, who.call())
		if err != nil {
			return found
		}
		for _, worker := range resp.GetWorkers() {
			if containsFold(worker.GetWorkerId(), query) || containsFold(worker.GetDisplayName(), query) ||
				containsFold(worker.GetJobTitle(), query) || containsFold(worker.GetUserPrincipalName(), query) {
				found = append(found, worker)
				if len(found) >= limit {
					return found
				}
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return found
}

func (h *Handler) serveUnit(w http.ResponseWriter, r *http.Request, who person) {
	unit, err := h.cfg.OrgModel.GetOrgUnit(r.Context(), &orgsyncv1.GetOrgUnitRequest{OrgUnitId: r.PathValue("id")}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "GetOrgUnit", err)
		return
	}
	workers, err := h.cfg.OrgModel.ListWorkers(r.Context(), &orgsyncv1.ListWorkersRequest{OrgUnitId: r.PathValue("id"), PageSize: 1000}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "ListWorkers", err)
		return
	}
	manager := ""
	for _, worker := range workers.GetWorkers() {
		if worker.GetWorkerId() == unit.GetUnit().GetManagerWorkerId() {
			manager = worker.GetDisplayName()
		}
	}
	if manager == "" && unit.GetUnit().GetManagerWorkerId() != "" {
		manager = h.workerNames(r, who)[unit.GetUnit().GetManagerWorkerId()]
	}
	h.render(w, r, http.StatusOK, "unit", who, unit.GetUnit().GetName(), map[string]any{
		"Unit": unit, "Manager": manager, "Groups": h.groupLinks(unit.GetGroupKeys()), "Workers": workers.GetWorkers(),
		"More": workers.GetNextPageToken() != "",
	})
}

func (h *Handler) serveWorkers(w http.ResponseWriter, r *http.Request, who person) {
	query := strings.TrimSpace(r.URL.Query().Get("q"))
	var workers []*orgsyncv1.WorkerSummary
	more := false
	if query != "" {
		workers = h.searchWorkers(r, who, query, 200)
	} else {
		resp, err := h.cfg.OrgModel.ListWorkers(r.Context(), &orgsyncv1.ListWorkersRequest{PageSize: 200, PageToken: r.URL.Query().Get("page")}, who.call())
		if err != nil {
			h.grpcFail(w, r, who, "ListWorkers", err)
			return
		}
		workers, more = resp.GetWorkers(), resp.GetNextPageToken() != ""
		if more {
			r.URL.RawQuery = "page=" + resp.GetNextPageToken()
		}
	}
	h.render(w, r, http.StatusOK, "workers", who, "Workers", map[string]any{"Workers": workers, "Query": query, "More": more, "Next": r.URL.RawQuery})
}

// timelineEntry is one transition on the worker page.
type timelineEntry struct {
	When      time.Time
	What      string
	Scheduled bool
}

type membership struct {
	Target, Key, Reason string
	Member              bool
}

func (h *Handler) serveWorker(w http.ResponseWriter, r *http.Request, who person) {
	ctx := r.Context()
	workerID := r.PathValue("id")
	resp, err := h.cfg.OrgModel.GetWorker(ctx, &orgsyncv1.GetWorkerRequest{WorkerId: workerID}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "GetWorker", err)
		return
	}
	var groups []membership
	licenseErrors := 0
	for _, account := range resp.GetAccounts() {
		licenseErrors += len(account.GetLicenseErrors())
		for _, key := range account.GetGroupKeys() {
			explained, err := h.cfg.OrgModel.ExplainMembership(ctx, &orgsyncv1.ExplainMembershipRequest{
				Target: account.GetTarget(), GroupKey: key, WorkerId: workerID}, who.call())
			m := membership{Target: targetName(account.GetTarget()), Key: key}
			if err != nil {
				m.Reason = "(no explanation: " + codeOf(err) + ")"
			} else {
				m.Reason, m.Member = explained.GetReason(), explained.GetMember()
			}
			groups = append(groups, m)
		}
	}
	audit, err := h.cfg.OrgModel.ListAudit(ctx, &orgsyncv1.ListAuditRequest{WorkerId: workerID, PageSize: 200}, who.call())
	auditErr := ""
	if err != nil {
		auditErr = codeOf(err)
	}
	h.render(w, r, http.StatusOK, "worker", who, displayName(resp.GetWorker()), map[string]any{
		"W": resp, "Timeline": timeline(resp, time.Now()), "Groups": groups,
		"Audit": audit.GetRecords(), "AuditMore": audit.GetNextPageToken() != "", "AuditErr": auditErr,
		"Access": h.workerAccess(r, who, workerID), "Notice": r.URL.Query().Get("done"),
		"LicenseErrors": licenseErrors > 0,
	})
}

// timeline lists the worker's dated transitions, past and scheduled, oldest first.
func timeline(resp *orgsyncv1.GetWorkerResponse, now time.Time) []timelineEntry {
	var entries []timelineEntry
	add := func(when time.Time, what string) {
		if !when.IsZero() {
			entries = append(entries, timelineEntry{When: when, What: what, Scheduled: when.After(now)})
		}
	}
	worker := resp.GetWorker()
	add(dateTime(worker.GetHireDate()), "hired")
	add(dateTime(worker.GetStartDate()), "starts work (account enabled)")
	add(dateTime(worker.GetEndDate()), "leaves (account disabled after the end date)")
	for _, record := range resp.GetScheduled() {
		what := "HR record takes effect"
		if unit := record.GetWorker().GetOrgUnitId(); unit != "" && unit != worker.GetOrgUnitId() {
			what += ": moves to unit " + unit
		}
		if title := record.GetWorker().GetJobTitle(); title != "" && title != worker.GetJobTitle() {
			what += ", title " + title
		}
		add(record.GetEffectiveAt().AsTime(), what)
	}
	if next := resp.GetNextChange(); next != nil {
		add(next.AsTime(), "next change of the desired state on its own")
	}
	slices.SortStableFunc(entries, func(a, b timelineEntry) int { return a.When.Compare(b.When) })
	return entries
}

// memberRow is one member on the group page.
type memberRow struct {
	Kind, Key, Name, Reason string
	// Applied is the writer's latest outcome for this membership, when the audit has one.
	Applied, AppliedAt string
}

func (h *Handler) serveGroup(w http.ResponseWriter, r *http.Request, who person) {
	ctx := r.Context()
	target, ok := parseTarget(r.PathValue("target"))
	if !ok {
		h.fail(w, r, who, http.StatusNotFound, "Unknown target "+r.PathValue("target")+": use entra or ad.")
		return
	}
	key := r.PathValue("key")
	resp, err := h.cfg.OrgModel.ListGroupMembers(ctx, &orgsyncv1.ListGroupMembersRequest{Target: target, GroupKey: key, PageSize: 1000}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "ListGroupMembers", err)
		return
	}
	// What the writer last did with the group and each membership, from the audit trail.
	applied := map[string]*orgsyncv1.AuditRecord{}
	var groupRecord *orgsyncv1.AuditRecord
	audit, auditErr := h.cfg.OrgModel.ListAudit(ctx, &orgsyncv1.ListAuditRequest{GroupKey: key, Target: target, PageSize: 1000}, who.call())
	for _, record := range audit.GetRecords() {
		switch record.GetResult().GetKind() {
		case orgsyncv1.ObjectKind_OBJECT_KIND_GROUP:
			if record.GetResult().GetObjectId() != "" {
				groupRecord = record
			}
		case orgsyncv1.ObjectKind_OBJECT_KIND_MEMBERSHIP:
			applied[record.GetResult().GetKey()] = record
		}
	}
	var rows []memberRow
	for _, member := range resp.GetMembers() {
		row := memberRow{Key: member.GetMemberKey(), Name: member.GetDisplayName(), Kind: "user"}
		if member.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_GROUP {
			row.Kind = "group"
			row.Reason = "nested group"
		} else if explained, err := h.cfg.OrgModel.ExplainMembership(ctx, &orgsyncv1.ExplainMembershipRequest{
			Target: target, GroupKey: key, WorkerId: member.GetMemberKey()}, who.call()); err == nil {
			row.Reason = explained.GetReason()
		}
		if record, ok := applied[key+"/"+member.GetMemberKey()]; ok {
			row.Applied = outcomeName(record.GetResult().GetOutcome())
			row.AppliedAt = formatTime(record.GetRecordedAt())
		}
		rows = append(rows, row)
	}
	objectID := ""
	if groupRecord != nil {
		objectID = groupRecord.GetResult().GetObjectId()
	}
	data := map[string]any{
		"Target": targetName(target), "Key": key, "Group": resp.GetGroup(), "Members": rows,
		"More": resp.GetNextPageToken() != "", "ObjectID": objectID,
		"LicenseErrors": resp.GetLicenseErrors(), "LicenseErrorsAt": resp.GetLicenseErrorsObservedAt(),
	}
	if auditErr != nil {
		data["AuditErr"] = codeOf(auditErr)
	}
	h.render(w, r, http.StatusOK, "group", who, cmp.Or(resp.GetGroup().GetDisplayName(), key), data)
}

func (h *Handler) serveApprovals(w http.ResponseWriter, r *http.Request, who person) {
	resp, err := h.cfg.OrgModel.ListPending(r.Context(), &orgsyncv1.ListPendingRequest{}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "ListPending", err)
		return
	}
	var batches []batchView
	for _, batch := range resp.GetBatches() {
		batches = append(batches, viewBatch(batch))
	}
	var decided []batchView
	for _, batch := range resp.GetDecided() {
		decided = append(decided, viewBatch(batch))
	}
	requests, err := h.cfg.OrgModel.ListAccessRequests(r.Context(), &orgsyncv1.ListAccessRequestsRequest{}, who.call())
	requestsErr := ""
	if err != nil {
		requestsErr = codeOf(err)
	}
	h.render(w, r, http.StatusOK, "approvals", who, "Approvals", map[string]any{
		"Batches": batches, "Decided": decided, "Notice": r.URL.Query().Get("done"),
		"Requests": requests.GetRequests(), "RequestsErr": requestsErr,
	})
}

// batchView is a held batch as the approvals page shows it.
type batchView struct {
	Batch *orgsyncv1.PendingBatch
	// Size is the number of changes; Affected the workers touched, by id.
	Size     int
	Affected []string
	Changes  []changeView
}

func viewBatch(batch *orgsyncv1.PendingBatch) batchView {
	view := batchView{Batch: batch, Size: len(batch.GetObjects())}
	affected := map[string]bool{}
	for _, object := range batch.GetObjects() {
		change := describeObject(object)
		view.Changes = append(view.Changes, change)
		if change.Worker != "" {
			affected[change.Worker] = true
		}
	}
	for worker := range affected {
		view.Affected = append(view.Affected, worker)
	}
	slices.Sort(view.Affected)
	return view
}

func (h *Handler) serveDecide(approve bool) func(http.ResponseWriter, *http.Request, person) {
	return func(w http.ResponseWriter, r *http.Request, who person) {
		batchID := r.PathValue("id")
		var err error
		done := ""
		if approve {
			var resp *orgsyncv1.ApproveResponse
			if resp, err = h.cfg.OrgModel.Approve(r.Context(), &orgsyncv1.ApproveRequest{BatchId: batchID}, who.call()); err == nil {
				done = "approved " + batchID + ": " + itoa(resp.GetPublished()) + " changes published"
			}
		} else {
			var resp *orgsyncv1.RejectResponse
			if resp, err = h.cfg.OrgModel.Reject(r.Context(), &orgsyncv1.RejectRequest{BatchId: batchID}, who.call()); err == nil {
				done = "rejected " + batchID + ": " + itoa(resp.GetDropped()) + " changes dropped"
			}
		}
		if err != nil {
			h.grpcFail(w, r, who, "Approve/Reject", err)
			return
		}
		h.cfg.Logger.InfoContext(r.Context(), "batch decided", "approve", approve)
		http.Redirect(w, r, "/approvals?done="+urlQuery(done), http.StatusSeeOther)
	}
}

func dateTime(d *orgsyncv1.Date) time.Time {
	if d == nil || d.GetYear() == 0 {
		return time.Time{}
	}
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
}

func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format("2006-01-02 15:04:05 UTC")
}
