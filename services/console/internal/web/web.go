// Package web is the console's user interface: server-rendered pages (html/template, assets
// embedded) over org-model's gRPC API, hr-ingest's dry run and the writers' admin endpoints.
//
// Every request goes through one chain: security headers (CSP without inline script) →
// cross-origin protection → the person's session (sealed cookie; the access token in it is
// verified by pkg/auth on every request, which also gives the roles) → the route's required role
// from one table (a route missing from it is refused) → a CSRF token on every form post → the
// page. Calls to org-model and the writers carry the person's own token, so the services
// authorise the person again and record them, not the console, as who approved or replayed.
//
// Names and e-mails appear on pages (that is what the console is for) but never in its logs.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
	"github.com/orgsync/orgsync/services/console/internal/login"
	"github.com/orgsync/orgsync/services/console/internal/session"
)

//go:embed static
var staticFiles embed.FS

// Cookie names.
const (
	sessionCookie = "orgsync_session"
	loginCookie   = "orgsync_login"
)

// loginTTL bounds the time between sending the browser to the issuer and its return.
const loginTTL = 10 * time.Minute

// CSP allows only the console's own scripts, styles and images: no inline script or style, no
// framing, forms posting only back to the console.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Verifier turns the person's access token into who they are and their roles (*auth.Verifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (auth.Principal, error)
}

// Writer is a writer's admin endpoint (dead letters and their replay).
type Writer struct {
	// Name is the writer's service name, e.g. "entra-writer".
	Name string
	// AdminURL is its admin listener, e.g. http://entra-writer:8081.
	AdminURL string
	// MetricsURL is its /metrics on the health port (Graph budget and throttling), optional.
	MetricsURL string
}

// Config wires the console.
type Config struct {
	OrgModel orgsyncv1grpc.OrgModelServiceClient
	Verifier Verifier
	Login    *login.Flow
	Sessions *session.Codec
	// HRIngestURL is hr-ingest's base URL, for the dry run of a source's payload (empty: the plan
	// page takes only HR events as JSON and policy files).
	HRIngestURL string
	// Sources are the HR source names offered on the plan page.
	Sources []string
	Writers []Writer
	// TraceURL turns a trace id into a link: "{traceId}" is replaced (empty: no links).
	TraceURL string
	// Targets are the targets whose groups are linked from units.
	Targets []orgsyncv1.Target
	// HTTPClient reaches hr-ingest and the writers.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Handler serves the console.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	rules  map[string]auth.Role
	pages  *pages
	public map[string]bool
}

// New builds the console's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if len(cfg.Targets) == 0 {
		cfg.Targets = []orgsyncv1.Target{orgsyncv1.Target_TARGET_ENTRA}
	}
	tmpl, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), rules: map[string]auth.Role{}, pages: tmpl, public: map[string]bool{}}
	static, _ := fs.Sub(staticFiles, "static")
	h.open("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	h.open("GET /login", http.HandlerFunc(h.serveLogin))
	h.open("GET /auth/callback", http.HandlerFunc(h.serveCallback))
	h.open("POST /logout", http.HandlerFunc(h.serveLogout))

	h.route("GET /{$}", auth.Viewer, func(w http.ResponseWriter, r *http.Request, _ person) {
		http.Redirect(w, r, "/org", http.StatusSeeOther)
	})
	h.route("GET /org", auth.Viewer, h.serveOrg)
	h.route("GET /units/{id}", auth.Viewer, h.serveUnit)
	h.route("GET /workers", auth.Viewer, h.serveWorkers)
	h.route("GET /workers/{id}", auth.Viewer, h.serveWorker)
	h.route("GET /groups/{target}/{key}", auth.Viewer, h.serveGroup)
	h.route("GET /plan", auth.Viewer, h.servePlanForm)
	h.route("POST /plan", auth.Viewer, h.servePlan)
	h.route("GET /approvals", auth.Viewer, h.serveApprovals)
	h.route("POST /approvals/{id}/approve", auth.Approver, h.serveDecide(true))
	h.route("POST /approvals/{id}/reject", auth.Approver, h.serveDecide(false))
	h.route("POST /workers/{id}/delegations", auth.Operator, h.serveCreateDelegation)
	h.route("POST /delegations/{id}/end", auth.Operator, h.serveEndDelegation)
	h.route("POST /workers/{id}/access-requests", auth.Operator, h.serveRequestAccess)
	h.route("POST /access-requests/{id}/approve", auth.Approver, h.serveDecideRequest(orgsyncv1.Decision_DECISION_APPROVED))
	h.route("POST /access-requests/{id}/reject", auth.Approver, h.serveDecideRequest(orgsyncv1.Decision_DECISION_REJECTED))
	h.route("GET /health", auth.Viewer, h.serveHealth)
	h.route("POST /health/writers/{writer}/replay", auth.Operator, h.serveReplay)
	return h, nil
}

// person is who is signed in.
type person struct {
	auth.Principal
	Name  string
	token string
	csrf  string
}

// Can reports whether the person holds role (for templates).
func (p person) Can(role string) bool { return p.Has(auth.Role(role)) }

// Display is the person's name, else their subject.
func (p person) Display() string {
	if p.Name != "" {
		return p.Name
	}
	return p.Subject
}

// call is the gRPC call option that sends the person's token.
func (p person) call() grpc.CallOption { return grpc.PerRPCCredentials(auth.Bearer(p.token)) }

// sessionData is what the session cookie holds.
type sessionData struct {
	Subject     string    `json:"sub"`
	Name        string    `json:"name,omitempty"`
	AccessToken string    `json:"at"`
	CSRF        string    `json:"csrf"`
	Expires     time.Time `json:"exp"`
}

func (h *Handler) open(pattern string, handler http.Handler) {
	h.mux.Handle(pattern, handler)
	h.public[pattern] = true
}

func (h *Handler) route(pattern string, role auth.Role, serve func(http.ResponseWriter, *http.Request, person)) {
	h.rules[pattern] = role
	h.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := r.Context().Value(personKey{}).(person)
		serve(w, r, who)
	}))
}

type personKey struct{}

// ServeHTTP runs the chain described in the package comment.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	header.Set("Content-Security-Policy", CSP)
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Referrer-Policy", "same-origin")
	header.Set("X-Frame-Options", "DENY")
	if h.cfg.Sessions.Secure {
		header.Set("Strict-Transport-Security", "max-age=31536000")
	}
	protection := http.NewCrossOriginProtection()
	protection.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, person{}, http.StatusForbidden, "This form was sent from another site, so it was refused.")
	}))
	protection.Handler(http.HandlerFunc(h.serve)).ServeHTTP(w, r)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	_, pattern := h.mux.Handler(r)
	if h.public[pattern] {
		h.mux.ServeHTTP(w, r)
		return
	}
	who, err := h.authenticate(r)
	if err != nil {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.fail(w, r, person{}, http.StatusUnauthorized, "You are not signed in (or your session ended). Sign in and try again.")
		return
	}
	if pattern == "" {
		h.mux.ServeHTTP(w, r) // 404 or 405, to a signed-in person only
		return
	}
	required, known := h.rules[pattern]
	if !known {
		h.fail(w, r, who, http.StatusForbidden, "This page is not open to anyone.")
		return
	}
	if !who.Has(required) {
		h.fail(w, r, who, http.StatusForbidden, fmt.Sprintf("This needs the %s role, which you do not hold.", required))
		return
	}
	if r.Method == http.MethodPost && !validCSRF(r, who.csrf) {
		h.fail(w, r, who, http.StatusForbidden, "The form's security token is missing or stale. Reload the page and try again.")
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), personKey{}, who)))
}

// authenticate opens the session and verifies its access token (which gives the roles).
func (h *Handler) authenticate(r *http.Request) (person, error) {
	var data sessionData
	if err := h.cfg.Sessions.Get(r, sessionCookie, &data); err != nil {
		return person{}, err
	}
	principal, err := h.cfg.Verifier.Verify(r.Context(), data.AccessToken)
	if err != nil {
		return person{}, err
	}
	return person{Principal: principal, Name: data.Name, token: data.AccessToken, csrf: data.CSRF}, nil
}

func validCSRF(r *http.Request, want string) bool {
	// ParseMultipartForm also parses url-encoded forms; the plan page uploads files.
	if err := r.ParseMultipartForm(maxUpload); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return false
	}
	got := r.PostFormValue("csrf")
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// safeNext keeps a return path on the console itself.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/org"
	}
	return next
}

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	target, pending, err := h.cfg.Login.Start(r.Context(), safeNext(r.URL.Query().Get("next")))
	if err != nil {
		h.cfg.Logger.WarnContext(r.Context(), "sign-in could not start", "error", err)
		h.fail(w, r, person{}, http.StatusServiceUnavailable, "The sign-in service cannot be reached. Try again in a moment.")
		return
	}
	if err := h.cfg.Sessions.Set(w, loginCookie, pending, time.Now().Add(loginTTL)); err != nil {
		h.fail(w, r, person{}, http.StatusInternalServerError, "The sign-in could not start.")
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) {
	var pending login.Pending
	if err := h.cfg.Sessions.Get(r, loginCookie, &pending); err != nil {
		h.fail(w, r, person{}, http.StatusBadRequest, "This sign-in was not started here, or took too long. Sign in again.")
		return
	}
	h.cfg.Sessions.Clear(w, loginCookie)
	identity, err := h.cfg.Login.Finish(r, pending)
	if err != nil {
		h.cfg.Logger.WarnContext(r.Context(), "sign-in failed", "error", err)
		h.fail(w, r, person{}, http.StatusUnauthorized, "The sign-in failed: "+userMessage(err))
		return
	}
	if _, err := h.cfg.Verifier.Verify(r.Context(), identity.AccessToken); err != nil {
		h.cfg.Logger.WarnContext(r.Context(), "sign-in gave an access token orgsync does not accept", "error", err)
		h.fail(w, r, person{}, http.StatusForbidden, "You signed in, but your access token is not one orgsync accepts (audience or issuer).")
		return
	}
	data := sessionData{Subject: identity.Subject, Name: identity.Name, AccessToken: identity.AccessToken, CSRF: rand.Text(), Expires: identity.Expiry}
	if err := h.cfg.Sessions.Set(w, sessionCookie, data, identity.Expiry); err != nil {
		h.fail(w, r, person{}, http.StatusInternalServerError, "The session could not be stored.")
		return
	}
	h.cfg.Logger.InfoContext(r.Context(), "signed in")
	http.Redirect(w, r, safeNext(pending.Next), http.StatusSeeOther)
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	if who, err := h.authenticate(r); err == nil && !validCSRF(r, who.csrf) {
		h.fail(w, r, who, http.StatusForbidden, "The form's security token is missing or stale.")
		return
	}
	h.cfg.Sessions.Clear(w, sessionCookie)
	h.render(w, r, http.StatusOK, "signedout", person{}, "Signed out", nil)
}

// userMessage is the part of an error safe to show: the sentinel's sentence.
func userMessage(err error) string {
	for _, sentinel := range []error{login.ErrDenied, login.ErrBadCallback, login.ErrExchange, login.ErrIssuerUnavailable} {
		if errors.Is(err, sentinel) {
			return sentinel.Error() + "."
		}
	}
	return "unexpected error."
}

// grpcFail shows an error from org-model as a page with the matching status. The message of an
// InvalidArgument (e.g. a plan's bad policy file) is shown; others are summarised.
func (h *Handler) grpcFail(w http.ResponseWriter, r *http.Request, who person, what string, err error) {
	st, _ := status.FromError(err)
	h.cfg.Logger.WarnContext(r.Context(), "org-model call failed", "call", what, "code", st.Code().String())
	switch st.Code() {
	case codes.NotFound:
		h.fail(w, r, who, http.StatusNotFound, "Not found: "+st.Message())
	case codes.PermissionDenied:
		// org-model's message says why: the role the call needs, or that a requester may not
		// approve their own request.
		h.fail(w, r, who, http.StatusForbidden, "org-model refused this: "+st.Message())
	case codes.Unauthenticated:
		h.fail(w, r, who, http.StatusUnauthorized, "org-model did not accept your sign-in. Sign out and in again.")
	case codes.InvalidArgument, codes.FailedPrecondition:
		h.fail(w, r, who, http.StatusBadRequest, st.Message())
	case codes.Unavailable, codes.DeadlineExceeded:
		h.fail(w, r, who, http.StatusServiceUnavailable, "org-model is unavailable right now; try again in a moment.")
	default:
		h.fail(w, r, who, http.StatusBadGateway, "org-model could not answer ("+st.Code().String()+").")
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, who person, code int, message string) {
	h.render(w, r, code, "error", who, http.StatusText(code), map[string]any{"Status": code, "Message": message})
}
