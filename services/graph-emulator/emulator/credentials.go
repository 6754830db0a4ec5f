package emulator

import (
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Operations of credentials and mail, as counted in Stats.Operations.
const (
	OpAccessPassCreate = "user.temporaryAccessPass.create"
	OpAccessPassList   = "list.temporaryAccessPassMethods"
	OpAccessPassDelete = "user.temporaryAccessPass.delete"
	OpSendMail         = "user.sendMail"
)

// AccessPassPolicy is the tenant's Temporary Access Pass authentication method policy (Graph's
// temporaryAccessPassAuthenticationMethodConfiguration): the lifetimes a pass may have, the
// lifetime of a pass created without one, and whether a pass may be used more than once.
type AccessPassPolicy struct {
	MinimumLifetimeInMinutes int
	MaximumLifetimeInMinutes int
	DefaultLifetimeInMinutes int
	// DefaultIsUsableOnce is the isUsableOnce of a pass created without one; IsUsableOnce forces
	// every pass to be one-time (a multi-use pass is then refused).
	DefaultIsUsableOnce bool
	IsUsableOnce        bool
}

// DefaultAccessPassPolicy is the policy a tenant starts with: passes of 1 to 8 hours, 1 hour
// when not said, usable more than once.
var DefaultAccessPassPolicy = AccessPassPolicy{MinimumLifetimeInMinutes: 60, MaximumLifetimeInMinutes: 480, DefaultLifetimeInMinutes: 60}

// WithAccessPassPolicy sets the tenant's Temporary Access Pass policy.
func WithAccessPassPolicy(policy AccessPassPolicy) Option {
	return func(s *Server) { s.accessPassPolicy = policy }
}

// accessPass is a user's Temporary Access Pass.
type accessPass struct {
	id                string
	secret            string
	created, start    time.Time
	lifetimeInMinutes int
	isUsableOnce      bool
}

// render is the pass as Graph returns it; the secret only when withSecret (the create's answer).
func (p *accessPass) render(now time.Time, withSecret bool) Object {
	var secret any
	if withSecret {
		secret = p.secret
	}
	usable, reason := true, "EnabledByPolicy"
	switch {
	case now.Before(p.start):
		usable, reason = false, "NotYetValid"
	case !now.Before(p.start.Add(time.Duration(p.lifetimeInMinutes) * time.Minute)):
		usable, reason = false, "Expired"
	}
	return Object{
		"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
		"id":          p.id, "temporaryAccessPass": secret,
		"createdDateTime": p.created.UTC().Format(time.RFC3339Nano), "startDateTime": p.start.UTC().Format(time.RFC3339Nano),
		"lifetimeInMinutes": p.lifetimeInMinutes, "isUsableOnce": p.isUsableOnce,
		"isUsable": usable, "methodUsabilityReason": reason,
	}
}

// AccessPass is a user's Temporary Access Pass as the emulator holds it, for tests.
type AccessPass struct {
	ID                string
	Secret            string
	Created, Start    time.Time
	LifetimeInMinutes int
	IsUsableOnce      bool
}

// SentMail is one message sendMail accepted: the sender (as the request named it, and its
// userPrincipalName), the recipients' addresses, the subject and the body.
type SentMail struct {
	From                string
	ToRecipients        []string
	CcRecipients        []string
	BccRecipients       []string
	Subject             string
	BodyContentType     string
	Body                string
	SaveToSentItems     bool
	SenderPrincipalName string
}

func (s *Server) credentialRoutes() []route {
	return []route{
		newRoute(http.MethodPost, "users/{user}/authentication/temporaryAccessPassMethods", OpAccessPassCreate, s.createAccessPass),
		newRoute(http.MethodGet, "users/{user}/authentication/temporaryAccessPassMethods", OpAccessPassList, s.listAccessPasses),
		newRoute(http.MethodDelete, "users/{user}/authentication/temporaryAccessPassMethods/{method}", OpAccessPassDelete, s.deleteAccessPass),
		newRoute(http.MethodPost, "users/{user}/sendMail", OpSendMail, s.sendMail),
	}
}

// createAccessPass handles POST /users/{id}/authentication/temporaryAccessPassMethods as Graph
// documents it: optional startDateTime, lifetimeInMinutes (10 to 43200, and within the tenant's
// policy; the policy's default when absent) and isUsableOnce (a multi-use pass refused when the
// policy makes every pass one-time). A user has one pass: a new one replaces the previous. The
// answer, 201, is the only one that carries the pass itself.
func (s *Server) createAccessPass(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	now := s.now()
	policy := s.accessPassPolicy
	pass := &accessPass{id: newGUID(), created: now, start: now, lifetimeInMinutes: policy.DefaultLifetimeInMinutes, isUsableOnce: policy.DefaultIsUsableOnce || policy.IsUsableOnce}
	if raw, given := body["startDateTime"]; given && raw != nil {
		text, _ := raw.(string)
		start, parseErr := time.Parse(time.RFC3339Nano, text)
		if parseErr != nil {
			return invalidAccessPass("startDateTime")
		}
		pass.start = start
	}
	if raw, given := body["lifetimeInMinutes"]; given && raw != nil {
		minutes, ok := raw.(float64)
		if !ok || minutes != float64(int(minutes)) || minutes < 10 || minutes > 43200 ||
			int(minutes) < policy.MinimumLifetimeInMinutes || int(minutes) > policy.MaximumLifetimeInMinutes {
			return invalidAccessPass("lifetimeInMinutes")
		}
		pass.lifetimeInMinutes = int(minutes)
	}
	if raw, given := body["isUsableOnce"]; given && raw != nil {
		once, ok := raw.(bool)
		if !ok || (!once && policy.IsUsableOnce) {
			return invalidAccessPass("isUsableOnce")
		}
		pass.isUsableOnce = once
	}
	if pass.secret, err = accessPassSecret(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found || s.faults.lagging(user) {
		return resourceNotFound(c.param("user"))
	}
	user.accessPass = pass
	answer := pass.render(now, true)
	answer["@odata.context"] = metadataURL + "users('" + user.id() + "')/authentication/temporaryAccessPassMethods/$entity"
	return s.writeJSON(c, http.StatusCreated, answer)
}

// invalidAccessPass refuses a pass's property, as a 400 naming it.
func invalidAccessPass(property string) *apiError {
	return newAPIError(http.StatusBadRequest, CodeBadRequest,
		"Invalid value specified for property '%s' of resource 'temporaryAccessPassAuthenticationMethod'.", property).
		about(DetailInvalidValue, property)
}

// accessPassSecret is a new pass: 8 characters, as Graph's default policy makes them.
func accessPassSecret() (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789+#%@"
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	for i, b := range raw {
		raw[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(raw), nil
}

// listAccessPasses handles GET /users/{id}/authentication/temporaryAccessPassMethods: the user's
// pass, if any, with temporaryAccessPass null (Graph hides it after creation).
func (s *Server) listAccessPasses(c *call) error {
	s.mu.Lock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found {
		s.mu.Unlock()
		return resourceNotFound(c.param("user"))
	}
	values := []any{}
	if user.accessPass != nil {
		values = append(values, user.accessPass.render(s.now(), false))
	}
	id := user.id()
	s.mu.Unlock()
	return s.writeJSON(c, http.StatusOK, Object{"@odata.context": metadataURL + "users('" + id + "')/authentication/temporaryAccessPassMethods", "value": values})
}

// deleteAccessPass handles DELETE /users/{id}/authentication/temporaryAccessPassMethods/{id}:
// 204, or 404 for an unknown user or pass.
func (s *Server) deleteAccessPass(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found {
		return resourceNotFound(c.param("user"))
	}
	if user.accessPass == nil || !strings.EqualFold(user.accessPass.id, c.param("method")) {
		return resourceNotFound(c.param("method"))
	}
	user.accessPass = nil
	return s.writeNoContent(c)
}

// sendMail handles POST /users/{id | userPrincipalName}/sendMail with a JSON message: the sender
// must be a user with a mailbox (here: a user with a mail address; Graph answers 404
// MailboxNotEnabledForRESTAPI otherwise, and ErrorInvalidUser for an unknown user), the message
// must name at least one recipient (400 ErrorInvalidRecipients otherwise, Graph's answer to a
// message without recipients). Accepted, it is 202 without a body, and the message is kept for
// SentMail.
func (s *Server) sendMail(c *call) error {
	body, err := readJSONObject(c.request)
	if err != nil {
		return err
	}
	message, ok := actionParameter(body, "message").(map[string]any)
	if !ok {
		return newAPIError(http.StatusBadRequest, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
	}
	sent := SentMail{
		From: c.param("user"), ToRecipients: recipientAddresses(message["toRecipients"]),
		CcRecipients: recipientAddresses(message["ccRecipients"]), BccRecipients: recipientAddresses(message["bccRecipients"]),
		SaveToSentItems: true,
	}
	sent.Subject, _ = message["subject"].(string)
	if content, ok := message["body"].(map[string]any); ok {
		sent.BodyContentType, _ = content["contentType"].(string)
		sent.Body, _ = content["content"].(string)
	}
	if save, given := actionParameter(body, "saveToSentItems").(bool); given {
		sent.SaveToSentItems = save
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(c.param("user"))
	if !found {
		return newAPIError(http.StatusNotFound, "ErrorInvalidUser", "The requested user '%s' is invalid.", c.param("user"))
	}
	if user.props.String("mail") == "" {
		return newAPIError(http.StatusNotFound, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
	}
	if len(sent.ToRecipients)+len(sent.CcRecipients)+len(sent.BccRecipients) == 0 {
		return newAPIError(http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid., A message can't be sent because it contains no recipients.")
	}
	for _, address := range slices.Concat(sent.ToRecipients, sent.CcRecipients, sent.BccRecipients) {
		if !strings.Contains(address, "@") {
			return newAPIError(http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient isn't valid., Recipient \"%s\" isn't resolved. All recipients must be resolved before a message can be submitted.", address)
		}
	}
	sent.SenderPrincipalName = user.props.String("userPrincipalName")
	s.sentMail = append(s.sentMail, sent)
	c.writer.WriteHeader(http.StatusAccepted)
	return nil
}

// actionParameter is an action's parameter by name: Graph matches parameter names without case
// (msgraph-sdk-go sends sendMail's as "Message" and "SaveToSentItems").
func actionParameter(body map[string]any, name string) any {
	for key, value := range body {
		if strings.EqualFold(key, name) {
			return value
		}
	}
	return nil
}

// recipientAddresses reads the addresses of a recipient collection ([{"emailAddress":
// {"address": …}}]).
func recipientAddresses(raw any) []string {
	list, _ := raw.([]any)
	var addresses []string
	for _, entry := range list {
		recipient, _ := entry.(map[string]any)
		email, _ := recipient["emailAddress"].(map[string]any)
		address, _ := email["address"].(string)
		addresses = append(addresses, address)
	}
	return addresses
}

// SentMail returns a copy of every message sendMail accepted, in order.
func (s *Server) SentMail() []SentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SentMail, len(s.sentMail))
	for i, sent := range s.sentMail {
		sent.ToRecipients = slices.Clone(sent.ToRecipients)
		sent.CcRecipients = slices.Clone(sent.CcRecipients)
		sent.BccRecipients = slices.Clone(sent.BccRecipients)
		out[i] = sent
	}
	return out
}

// AccessPass returns a copy of a user's Temporary Access Pass; ok is false for an unknown user or
// one without a pass.
func (s *Server) AccessPass(idOrPrincipalName string) (pass AccessPass, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.directory.lookupUser(idOrPrincipalName)
	if !found || user.accessPass == nil {
		return AccessPass{}, false
	}
	p := user.accessPass
	return AccessPass{ID: p.id, Secret: p.secret, Created: p.created, Start: p.start, LifetimeInMinutes: p.lifetimeInMinutes, IsUsableOnce: p.isUsableOnce}, true
}
