package emulator

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// apiVersion is the only Graph version the emulator serves; routes live under /v1.0.
const apiVersion = "v1.0"

// successContentType is what Graph sends with a JSON answer; errors are plain application/json.
const successContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

// Server is an in-memory Microsoft Graph v1.0 directory served over HTTP. It is safe for
// concurrent use; every request holds one lock while it reads or changes the directory.
type Server struct {
	logger            *slog.Logger
	now               func() time.Time
	allUserProperties bool
	// verifiedDomains, when not empty, are the only domains a userPrincipalName may use.
	verifiedDomains map[string]bool
	routes          []route
	// skus are the tenant's subscriptions (WithSubscribedSkus); tenantUsageLocation its country.
	skus                []SubscribedSku
	tenantUsageLocation string

	// accessPassPolicy is the tenant's Temporary Access Pass method policy (WithAccessPassPolicy).
	accessPassPolicy AccessPassPolicy

	mu        sync.Mutex
	directory *directory
	// sentMail is every message sendMail accepted, in order (see SentMail).
	sentMail []SentMail

	stats  *statsRecorder
	faults *faultInjector
}

// Option configures a Server.
type Option func(*Server)

// WithLogger logs every request at debug level to logger. By default nothing is logged.
func WithLogger(logger *slog.Logger) Option {
	return func(s *Server) { s.logger = logger }
}

// WithClock sets the clock for the dates in error envelopes; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithAllUserProperties makes a user read without $select return every stored property instead
// of Graph's default set. Real Graph does not do this; use it only where a test deliberately
// does not care about $select.
func WithAllUserProperties() Option {
	return func(s *Server) { s.allUserProperties = true }
}

// WithVerifiedDomains makes the emulator refuse, as Graph does, a userPrincipalName whose domain
// is not one of domains (compared without case). By default every domain is accepted.
func WithVerifiedDomains(domains ...string) Option {
	return func(s *Server) {
		s.verifiedDomains = make(map[string]bool, len(domains))
		for _, domain := range domains {
			s.verifiedDomains[strings.ToLower(domain)] = true
		}
	}
}

// validation returns the checks of a create (creating) or PATCH body of kind.
func (s *Server) validation(kind objectKind, creating bool) validation {
	return validation{kind: kind, creating: creating, verifiedDomains: s.verifiedDomains}
}

// New returns an empty directory.
func New(opts ...Option) *Server {
	s := &Server{
		logger:           slog.New(slog.DiscardHandler),
		now:              time.Now,
		directory:        newDirectory(),
		stats:            newStatsRecorder(),
		faults:           newFaultInjector(),
		accessPassPolicy: DefaultAccessPassPolicy,
	}
	for _, opt := range opts {
		opt(s)
	}
	s.routes = s.routeTable()
	return s
}

// Operation names, as counted in Stats.Operations.
const (
	OpUserCreate   = "user.create"
	OpUserGet      = "user.get"
	OpUserUpdate   = "user.update"
	OpUserDelete   = "user.delete"
	OpListUsers    = "list.users"
	OpGroupCreate  = "group.create"
	OpGroupGet     = "group.get"
	OpGroupUpdate  = "group.update"
	OpGroupDelete  = "group.delete"
	OpListGroups   = "list.groups"
	OpMemberAdd    = "member.add"
	OpMemberRemove = "member.remove"
	OpListMembers  = "list.members"
	// OpMemberBind counts group PATCHes that add members through "members@odata.bind".
	OpMemberBind = "member.bind"
	OpManagerSet = "manager.set"
	// OpBatch counts $batch envelopes; each item is also counted as its own operation.
	OpBatch = "batch"
	// OpListDeleted and OpRestore read and restore soft-deleted users.
	OpListDeleted   = "list.deleted"
	OpRestore       = "user.restore"
	OpManagerGet    = "manager.get"
	OpManagerRemove = "manager.remove"
	// OpUsersDelta and OpGroupsDelta count delta query pages, whatever their token.
	OpUsersDelta  = "delta.users"
	OpGroupsDelta = "delta.groups"
	// OpUnknown counts requests that matched no route.
	OpUnknown = "unknown"
)

func (s *Server) routeTable() []route {
	// The delta functions come first because users/{user} and groups/{group} match them too.
	routes := append(append(append(s.deltaRoutes(), s.sessionRoutes()...), s.licenseRoutes()...), s.credentialRoutes()...)
	return append(routes, []route{
		newRoute(http.MethodGet, "users", OpListUsers, s.listUsers),
		newRoute(http.MethodPost, "users", OpUserCreate, s.createUser),
		newRoute(http.MethodGet, "users/{user}", OpUserGet, s.getUser),
		newRoute(http.MethodPatch, "users/{user}", OpUserUpdate, s.updateUser),
		newRoute(http.MethodDelete, "users/{user}", OpUserDelete, s.deleteUser),
		newRoute(http.MethodGet, "groups", OpListGroups, s.listGroups),
		newRoute(http.MethodPost, "groups", OpGroupCreate, s.createGroup),
		newRoute(http.MethodGet, "groups/{group}", OpGroupGet, s.getGroup),
		newRoute(http.MethodPatch, "groups/{group}", OpGroupUpdate, s.updateGroup),
		newRoute(http.MethodDelete, "groups/{group}", OpGroupDelete, s.deleteGroup),
		newRoute(http.MethodGet, "groups/{group}/members", OpListMembers, s.listMembers),
		newRoute(http.MethodPost, "groups/{group}/members/$ref", OpMemberAdd, s.addMember),
		newRoute(http.MethodDelete, "groups/{group}/members/{member}/$ref", OpMemberRemove, s.removeMember),
		newRoute(http.MethodPost, "$batch", OpBatch, s.batch),
		newRoute(http.MethodGet, "directory/deletedItems/{cast}", OpListDeleted, s.listDeletedUsers),
		newRoute(http.MethodPost, "directory/deletedItems/{object}/restore", OpRestore, s.restoreDeleted),
		newRoute(http.MethodPut, "users/{user}/manager/$ref", OpManagerSet, s.setManager),
		newRoute(http.MethodGet, "users/{user}/manager", OpManagerGet, s.getManager),
		newRoute(http.MethodDelete, "users/{user}/manager/$ref", OpManagerRemove, s.removeManager),
	}...)
}

// call is one request in flight.
type call struct {
	// operation is what Stats counts the request as; a handler may refine its route's operation.
	operation       string
	writer          *statusWriter
	request         *http.Request
	params          map[string]string
	requestID       string
	clientRequestID string
}

func (c *call) param(name string) string { return c.params[name] }

// ServeHTTP answers one Graph request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, false) }

// serve answers one request; a $batch item is counted as an operation and a write, not as an
// HTTP request of its own.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, batchItem bool) {
	started := time.Now()
	c := &call{writer: &statusWriter{ResponseWriter: w}, request: r, requestID: newGUID()}
	c.clientRequestID = r.Header.Get("client-request-id")
	if c.clientRequestID == "" {
		// Graph echoes its own request id when the client sends none.
		c.clientRequestID = c.requestID
	}
	c.writer.Header().Set("request-id", c.requestID)
	c.writer.Header().Set("client-request-id", c.clientRequestID)

	c.operation = OpUnknown
	var errorCode string
	matched, err := s.match(r)
	if err == nil {
		c.operation = matched.route.operation
		c.params = matched.params
		err = s.faults.before(r, batchItem)
		if err == nil {
			err = s.handle(c, matched.route)
		}
	}
	if err != nil {
		errorCode = s.writeError(c, err)
	}
	operation := c.operation
	s.stats.record(r.Method, operation, c.writer.status, errorCode, batchItem)
	s.logger.LogAttrs(r.Context(), slog.LevelDebug, "graph request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("operation", operation),
		slog.Int("status", c.writer.status),
		slog.String("error_code", errorCode),
		slog.String("request_id", c.requestID),
		slog.Duration("duration", time.Since(started)))
}

// handle runs the route's handler; when the injector loses the answer of a write, the write is
// applied but its answer discarded and replaced by a 500.
func (s *Server) handle(c *call, r *route) error {
	if !s.faults.loseAnswer(c.request) {
		return r.handle(c)
	}
	answer := c.writer
	c.writer = &statusWriter{ResponseWriter: discardWriter{header: http.Header{}}}
	err := r.handle(c)
	c.writer = answer
	if err != nil {
		return err
	}
	return lostAnswer()
}

// discardWriter swallows an answer.
type discardWriter struct{ header http.Header }

func (w discardWriter) Header() http.Header         { return w.header }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}

// match finds the route for r, or returns the error Graph gives for an unknown URL.
func (s *Server) match(r *http.Request) (routeMatch, error) {
	segments, err := pathSegments(r.URL.EscapedPath())
	if err != nil {
		return routeMatch{}, err
	}
	if len(segments) == 0 || segments[0] != apiVersion {
		version := ""
		if len(segments) > 0 {
			version = segments[0]
		}
		return routeMatch{}, newAPIError(http.StatusBadRequest, CodeBadRequest,
			"Invalid version: '%s'. The emulator serves Microsoft Graph under /%s.", version, apiVersion)
	}
	return matchRoute(s.routes, r.Method, segments[1:])
}

// pathSegments splits an escaped path into unescaped segments, ignoring empty ones.
func pathSegments(escapedPath string) ([]string, error) {
	var segments []string
	for _, escaped := range strings.Split(escapedPath, "/") {
		if escaped == "" {
			continue
		}
		segment, err := url.PathUnescape(escaped)
		if err != nil {
			return nil, newAPIError(http.StatusBadRequest, CodeBadRequest, "The URL segment '%s' is malformed.", escaped)
		}
		segments = append(segments, segment)
	}
	return segments, nil
}

// writeError writes err in Graph's envelope and returns the code it used. It is the only place
// that writes an error response.
func (s *Server) writeError(c *call, err error) string {
	answer := asAPIError(err)
	if answer.code == CodeInternalServerError {
		s.logger.LogAttrs(c.request.Context(), slog.LevelError, "emulator bug", slog.String("error", err.Error()))
	}
	envelope := errorEnvelope{Error: errorBody{
		Code:    answer.code,
		Message: answer.message,
		Details: answer.details,
		InnerError: innerError{
			Date:            s.now().UTC().Format(time.RFC3339),
			RequestID:       c.requestID,
			ClientRequestID: c.clientRequestID,
		},
	}}
	for name, values := range answer.headers {
		c.writer.Header()[name] = values
	}
	s.writeBody(c, answer.status, "application/json", envelope)
	return answer.code
}

// writeJSON writes a successful JSON answer.
func (s *Server) writeJSON(c *call, status int, body any) error {
	s.writeBody(c, status, successContentType, body)
	return nil
}

func (s *Server) writeNoContent(c *call) error {
	c.writer.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) writeBody(c *call, status int, contentType string, body any) {
	var encoded bytes.Buffer
	encoder := json.NewEncoder(&encoded)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(body); err != nil {
		// Bodies are built from decoded JSON, so this is a bug; answer it without recursing.
		s.logger.LogAttrs(c.request.Context(), slog.LevelError, "emulator bug", slog.String("error", err.Error()))
		http.Error(c.writer, `{"error":{"code":"InternalServerError","message":"The emulator could not encode its answer."}}`, http.StatusInternalServerError)
		return
	}
	c.writer.Header().Set("Content-Type", contentType)
	c.writer.Header().Set("OData-Version", "4.0")
	c.writer.WriteHeader(status)
	_, _ = c.writer.Write(encoded.Bytes()) // a client that went away is not the emulator's problem
}

// statusWriter remembers the status code written, for Stats and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(data []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(data)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
