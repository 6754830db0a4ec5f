package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// maxUpload bounds a pasted or uploaded payload or policy file.
const maxUpload = 8 << 20

// Plan input kinds besides a source's name.
const (
	kindEvents = "events" // HR events as orgsync JSON (HREvent protojson), as orgsyncctl plan --events
	kindPolicy = "policy" // a policy file to try instead of the one in force
)

// plannedRow is one planned change in words.
type plannedRow struct {
	Action, Kind, Key string
	// Fields lists each attribute that changes, "name: before → after".
	Fields []string
}

// targetPlan is the plan's changes in one target.
type targetPlan struct {
	Target string
	Rows   []plannedRow
}

func (h *Handler) planForm(who person, kind, payload string) map[string]any {
	return map[string]any{"Sources": h.cfg.Sources, "DryRun": h.cfg.HRIngestURL != "", "Kind": cmp.Or(kind, kindEvents), "Payload": payload}
}

func (h *Handler) servePlanForm(w http.ResponseWriter, r *http.Request, who person) {
	h.render(w, r, http.StatusOK, "plan", who, "Plan", h.planForm(who, r.URL.Query().Get("kind"), ""))
}

func (h *Handler) servePlan(w http.ResponseWriter, r *http.Request, who person) {
	kind := r.PostFormValue("kind")
	payload := r.PostFormValue("payload")
	contentType := "application/json"
	if file, header, err := r.FormFile("file"); err == nil {
		data, err := io.ReadAll(io.LimitReader(file, maxUpload))
		file.Close()
		if err != nil {
			h.planError(w, r, who, kind, payload, "The uploaded file could not be read.")
			return
		}
		payload = string(data)
		if ct := header.Header.Get("Content-Type"); ct != "" && ct != "application/octet-stream" {
			contentType = ct
		}
	}
	if strings.EqualFold(r.PostFormValue("format"), "csv") {
		contentType = "text/csv"
	}
	if strings.TrimSpace(payload) == "" {
		h.planError(w, r, who, kind, payload, "Paste a payload or choose a file to plan.")
		return
	}
	req := &orgsyncv1.PlanRequest{}
	switch {
	case kind == kindPolicy:
		req.PolicyYaml = payload
	case kind == kindEvents:
		events, err := parseEvents([]byte(payload))
		if err != nil {
			h.planError(w, r, who, kind, payload, "The HR events are not valid orgsync JSON: "+err.Error())
			return
		}
		req.Events = events
	case slices.Contains(h.cfg.Sources, kind) && h.cfg.HRIngestURL != "":
		events, problem, err := h.dryRun(r, who, kind, contentType, []byte(payload))
		if err != nil {
			h.cfg.Logger.WarnContext(r.Context(), "hr-ingest dry run failed", "error", err)
			h.planError(w, r, who, kind, payload, "hr-ingest could not read the payload right now; try again in a moment.")
			return
		}
		if problem != "" {
			h.planError(w, r, who, kind, payload, "hr-ingest refused the payload: "+problem)
			return
		}
		req.Events = events
	default:
		h.planError(w, r, who, kind, payload, fmt.Sprintf("Unknown kind of input %q: choose one from the list.", kind))
		return
	}
	resp, err := h.cfg.OrgModel.Plan(r.Context(), req, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "Plan", err)
		return
	}
	data := h.planForm(who, kind, payload)
	data["Result"] = map[string]any{
		"Targets": groupPlan(resp.GetChanges()), "Total": len(resp.GetChanges()), "Events": len(req.GetEvents()),
		"Disables": resp.GetDisables(), "Removals": resp.GetRemovals(),
	}
	h.render(w, r, http.StatusOK, "plan", who, "Plan", data)
}

func (h *Handler) planError(w http.ResponseWriter, r *http.Request, who person, kind, payload, message string) {
	data := h.planForm(who, kind, payload)
	data["Error"] = message
	h.render(w, r, http.StatusBadRequest, "plan", who, "Plan", data)
}

// parseEvents reads one HREvent or a JSON array of them.
func parseEvents(data []byte) ([]*orgsyncv1.HREvent, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		trimmed = append(append([]byte("["), trimmed...), ']')
	}
	var req orgsyncv1.PlanRequest
	if err := protojson.Unmarshal(append(append([]byte(`{"events":`), trimmed...), '}'), &req); err != nil {
		return nil, err
	}
	return req.GetEvents(), nil
}

// dryRun sends a source's payload to hr-ingest's dry run, with the person's token, and returns the
// events it would publish, or the problem it names.
func (h *Handler) dryRun(r *http.Request, who person, source, contentType string, payload []byte) ([]*orgsyncv1.HREvent, string, error) {
	endpoint := strings.TrimSuffix(h.cfg.HRIngestURL, "/") + "/v1/dry-run/" + url.PathEscape(source)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+who.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("hr-ingest dry run: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4*maxUpload))
	if err != nil {
		return nil, "", fmt.Errorf("hr-ingest dry run: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var answer orgsyncv1.PlanRequest
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &answer); err != nil {
			return nil, "", fmt.Errorf("hr-ingest dry run answer: %w", err)
		}
		return answer.GetEvents(), "", nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, "hr-ingest did not let you run a dry run (" + resp.Status + ").", nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, problemText(body, resp.Status), nil
	}
	return nil, "", fmt.Errorf("hr-ingest dry run answered %s", resp.Status)
}

// problemText summarises an RFC 9457 problem: its title, detail and each invalid field's pointer
// and detail.
func problemText(body []byte, fallback string) string {
	var problem struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Pointer string `json:"pointer"`
			Detail  string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &problem); err != nil || (problem.Title == "" && problem.Detail == "") {
		return fallback
	}
	parts := []string{cmp.Or(problem.Detail, problem.Title)}
	for _, e := range problem.Errors {
		parts = append(parts, e.Pointer+": "+e.Detail)
	}
	return strings.Join(parts, "; ")
}

// groupPlan sorts the changes per target, each with the attributes that change.
func groupPlan(changes []*orgsyncv1.PlannedChange) []targetPlan {
	byTarget := map[string]*targetPlan{}
	var order []string
	for _, change := range changes {
		object := cmp.Or(change.GetAfter(), change.GetBefore())
		target := targetName(object.GetTarget())
		if target == "unspecified" {
			target, _, _ = strings.Cut(change.GetPath(), ".")
		}
		plan, ok := byTarget[target]
		if !ok {
			plan = &targetPlan{Target: target}
			byTarget[target] = plan
			order = append(order, target)
		}
		described := describeObject(object)
		plan.Rows = append(plan.Rows, plannedRow{
			Action: enumName(change.GetAction()), Kind: described.Kind, Key: change.GetPath(),
			Fields: fieldChanges(change.GetBefore(), change.GetAfter()),
		})
	}
	slices.Sort(order)
	var plans []targetPlan
	for _, target := range order {
		plans = append(plans, *byTarget[target])
	}
	return plans
}

// fieldChanges lists the attributes of the object that differ between before and after.
func fieldChanges(before, after *orgsyncv1.DesiredObject) []string {
	flat := func(o *orgsyncv1.DesiredObject) map[string]string {
		fields := map[string]string{}
		if o == nil {
			return fields
		}
		var body proto.Message
		switch {
		case o.GetUser() != nil:
			body = o.GetUser()
		case o.GetGroup() != nil:
			body = o.GetGroup()
		case o.GetMembership() != nil:
			body = o.GetMembership()
		default:
			return fields
		}
		// Unpopulated fields too, so that a flag turned off reads "true → false".
		raw, err := (protojson.MarshalOptions{EmitUnpopulated: true}).Marshal(body)
		if err != nil {
			return fields
		}
		var values map[string]any
		if err := json.Unmarshal(raw, &values); err != nil {
			return fields
		}
		for name, value := range values {
			if nested, ok := value.(map[string]any); ok {
				for k, v := range nested {
					fields[name+"."+k] = fmt.Sprint(v)
				}
				continue
			}
			if value != nil && value != "" {
				fields[name] = fmt.Sprint(value)
			}
		}
		if o.GetTombstone() {
			fields = map[string]string{}
		}
		return fields
	}
	old, next := flat(before), flat(after)
	names := map[string]bool{}
	for name := range old {
		names[name] = true
	}
	for name := range next {
		names[name] = true
	}
	var lines []string
	for name := range names {
		if old[name] == next[name] {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %s → %s", name, cmp.Or(old[name], "—"), cmp.Or(next[name], "—")))
	}
	slices.Sort(lines)
	return lines
}

var errNoWriter = errors.New("no such writer")
