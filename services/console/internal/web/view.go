package web

import (
	"bytes"
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc/status"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

//go:embed templates
var templateFiles embed.FS

// pages holds one template set per page, each the layout plus the page.
type pages struct{ byName map[string]*template.Template }

func parsePages() (*pages, error) {
	funcs := template.FuncMap{
		"target":   targetName,
		"time":     formatTime,
		"date":     func(d *orgsyncv1.Date) string { return formatDate(d) },
		"outcome":  outcomeName,
		"name":     displayName,
		"describe": describeObject,
		"join":     strings.Join,
		"status":   enumName,
		// delegations and helpdesk requests (access.go)
		"delegationState":   delegationState,
		"requestState":      requestState,
		"requestWhat":       requestWhat,
		"credentialOutcome": credentialOutcome,
		"principal":         principalName,
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	entries, err := templateFiles.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, entry := range entries {
		name := strings.TrimSuffix(entry.Name(), ".html")
		if name == "layout" {
			continue
		}
		page, err := template.Must(layout.Clone()).ParseFS(templateFiles, "templates/"+entry.Name())
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", entry.Name(), err)
		}
		p.byName[name] = page
	}
	return p, nil
}

// view is what every page's template gets.
type view struct {
	Title  string
	Nav    string
	Person person
	// SignedIn says the page shows the navigation (not on sign-in errors).
	SignedIn bool
	CSRF     string
	TraceURL string
	Data     any
}

// Trace returns the trace link for a trace id, or "" without a trace UI configured.
func (v view) Trace(traceID string) string {
	if v.TraceURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(v.TraceURL, "{traceId}", url.PathEscape(traceID))
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, page string, who person, title string, data any) {
	tmpl, ok := h.pages.byName[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	nav, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	v := view{Title: title, Nav: nav, Person: who, SignedIn: who.Subject != "", CSRF: who.csrf, TraceURL: h.cfg.TraceURL, Data: data}
	var body bytes.Buffer
	if err := tmpl.ExecuteTemplate(&body, "layout.html", v); err != nil {
		h.cfg.Logger.ErrorContext(r.Context(), "rendering a page", "page", page, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = body.WriteTo(w)
}

func targetName(t orgsyncv1.Target) string {
	switch t {
	case orgsyncv1.Target_TARGET_ENTRA:
		return "entra"
	case orgsyncv1.Target_TARGET_AD:
		return "ad"
	}
	return "unspecified"
}

func parseTarget(name string) (orgsyncv1.Target, bool) {
	switch name {
	case "entra":
		return orgsyncv1.Target_TARGET_ENTRA, true
	case "ad":
		return orgsyncv1.Target_TARGET_AD, true
	}
	return orgsyncv1.Target_TARGET_UNSPECIFIED, false
}

// ParseTargets reads "entra,ad".
func ParseTargets(list string) ([]orgsyncv1.Target, error) {
	var targets []orgsyncv1.Target
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		target, ok := parseTarget(name)
		if !ok {
			return nil, fmt.Errorf("unknown target %q (want entra or ad)", name)
		}
		targets = append(targets, target)
	}
	return targets, nil
}

// enumName is a proto enum value in words: EMPLOYMENT_STATUS_ON_LEAVE reads "on leave".
func enumName(value fmt.Stringer) string {
	name := value.String()
	for _, prefix := range []string{"EMPLOYMENT_TYPE_", "EMPLOYMENT_STATUS_", "GROUP_KIND_", "DECISION_", "OUTCOME_", "CHANGE_ACTION_", "LIFECYCLE_PHASE_", "LICENSE_ASSIGNMENT_ERROR_"} {
		name = strings.TrimPrefix(name, prefix)
	}
	return strings.ReplaceAll(strings.ToLower(name), "_", " ")
}

func outcomeName(o orgsyncv1.Outcome) string {
	return strings.ToLower(strings.TrimPrefix(o.String(), "OUTCOME_"))
}

func formatDate(d *orgsyncv1.Date) string {
	if d == nil || d.GetYear() == 0 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

func displayName(w *orgsyncv1.Worker) string {
	n := w.GetName()
	if n.GetDisplayName() != "" {
		return n.GetDisplayName()
	}
	given := cmp.Or(n.GetPreferredName(), n.GetGivenName())
	return cmp.Or(strings.TrimSpace(given+" "+n.GetFamilyName()), w.GetWorkerId())
}

// changeView is one desired object in words, for plans and held batches.
type changeView struct {
	Target, Kind, Key, Summary string
	Tombstone                  bool
	// Worker is the worker the object is about, if any.
	Worker string
}

func describeObject(o *orgsyncv1.DesiredObject) changeView {
	c := changeView{Target: targetName(o.GetTarget()), Key: o.GetKey(), Tombstone: o.GetTombstone()}
	switch {
	case o.GetUser() != nil:
		u := o.GetUser()
		c.Kind, c.Worker = "user", cmp.Or(u.GetWorkerId(), o.GetKey())
		state := "enabled"
		if !u.GetAccountEnabled() {
			state = "disabled"
		}
		c.Summary = fmt.Sprintf("%s, %s, %s, %s", u.GetUserPrincipalName(), state, u.GetJobTitle(), u.GetDepartment())
	case o.GetGroup() != nil:
		g := o.GetGroup()
		c.Kind, c.Summary = "group", g.GetDisplayName()
	case o.GetMembership() != nil:
		m := o.GetMembership()
		c.Kind = "membership"
		c.Summary = m.GetMemberKey() + " in " + m.GetGroupKey()
		if m.GetMemberKind() == orgsyncv1.MemberKind_MEMBER_KIND_USER {
			c.Worker = m.GetMemberKey()
		}
	default:
		c.Kind = "object"
		if kind, key, ok := strings.Cut(o.GetKey(), "/"); ok {
			c.Kind, c.Summary = "membership", key+" in "+kind
			c.Worker = key
		} else if o.GetTombstone() {
			c.Worker = o.GetKey()
		}
	}
	if c.Tombstone {
		c.Summary = "removed: " + cmp.Or(c.Summary, c.Key)
	}
	return c
}

func codeOf(err error) string {
	st, _ := status.FromError(err)
	return st.Code().String()
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func urlQuery(s string) string { return url.QueryEscape(s) }
