// Package graph is entra-writer's adapter to Microsoft Entra ID through msgraph-sdk-go. It is the
// only package in orgsync that imports the Graph SDK: compiling the SDK is slow and large, so
// everything else talks to Entra through the writer's Directory port.
package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/authentication"
	khttp "github.com/microsoft/kiota-http-go"
	msgraph "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	graphdirectory "github.com/microsoftgraph/msgraph-sdk-go/directory"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

// DefaultBaseURL is Microsoft Graph v1.0.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// Client is a Directory over Microsoft Graph. It is safe for concurrent use.
type Client struct {
	graph   *msgraph.GraphServiceClient
	adapter *msgraph.GraphRequestAdapter
	baseURL string
	// throttle, when set, also hears of the 429s inside a $batch's answer.
	throttle Throttle
}

var _ writer.Directory = (*Client)(nil)

// New returns a Client for baseURL (Graph itself or the emulator) authenticating with auth. The
// SDK's middleware (compression, redirects, telemetry headers) runs under an OpenTelemetry
// transport, so each Graph call is a client span of the trace that caused it.
//
// The SDK's retry handler is left out: in kiota-http-go v1.5 it re-sends a POST or PATCH whose
// gzip-compressed body was already read, so the retry arrives empty and Graph answers 400. The
// writer retries instead, message by message, honouring Retry-After (see docs/entra-writer.md).
func New(baseURL string, auth authentication.AuthenticationProvider, opts ...Option) (*Client, error) {
	var settings settings
	for _, opt := range opts {
		opt(&settings)
	}
	options := msgraph.GetDefaultClientOptions()
	var middleware []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(&options) {
		if _, isRetry := m.(*khttp.RetryHandler); !isRetry {
			middleware = append(middleware, m)
		}
	}
	httpClient := msgraphcore.GetDefaultClient(&options, middleware...)
	// Beneath the middleware, where a request is final: the dry run logs exactly what would be
	// sent, and the retry transport sends the same compressed bytes again.
	base := khttp.GetDefaultTransport()
	if settings.dryRun != nil {
		base = DryRunTransport{Base: base, Logger: settings.dryRun}
	}
	var transport http.RoundTripper = RetryTransport{Base: base}
	if settings.throttle != nil {
		transport = ThrottleTransport{Base: transport, Throttle: settings.throttle}
	}
	httpClient.Transport = khttp.NewCustomTransportWithParentTransport(transport, middleware...)
	httpClient.Transport = otelhttp.NewTransport(httpClient.Transport,
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "graph " + r.Method }))
	httpClient.Timeout = 60 * time.Second
	adapter, err := msgraph.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph request adapter: %w", err)
	}
	baseURL = strings.TrimRight(baseURL, "/")
	adapter.SetBaseUrl(baseURL)
	return &Client{graph: msgraph.NewGraphServiceClient(adapter), adapter: adapter, baseURL: baseURL, throttle: settings.throttle}, nil
}

// Option configures a Client.
type Option func(*settings)

type settings struct {
	dryRun   *slog.Logger
	throttle Throttle
}

// WithThrottle keeps every call out of the Retry-After window of an earlier 429, of this
// replica or another (see ThrottleTransport).
func WithThrottle(t Throttle) Option { return func(s *settings) { s.throttle = t } }

// WithDryRun makes the Client log every write instead of sending it (see DryRunTransport).
func WithDryRun(logger *slog.Logger) Option { return func(s *settings) { s.dryRun = logger } }

var userSelect = func() []string {
	fields := make([]string, 0, len(directory.UserFields)+2)
	// signInSessionsValidFromDateTime is read, never written: it tells whether a leaver's
	// sessions were revoked since their access ended.
	fields = append(fields, "id", "signInSessionsValidFromDateTime")
	for _, f := range directory.UserFields {
		fields = append(fields, string(f))
	}
	return fields
}()

// FindUserByEmployeeID looks a user up by employeeId, as an advanced query (eventually consistent).
func (c *Client) FindUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error) {
	headers := abstractions.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	filter := "employeeId eq '" + quote(employeeID) + "'"
	count := true
	resp, err := c.graph.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		Headers:         headers,
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Count: &count, Select: userSelect},
	})
	if err != nil {
		return nil, classify("user.find", err)
	}
	switch found := resp.GetValue(); len(found) {
	case 0:
		return nil, nil
	case 1:
		return toUser(found[0]), nil
	default:
		return nil, &directory.Error{Op: "user.find", Class: directory.ClassConflict, Code: "orgsync_DuplicateEmployeeId",
			Message: fmt.Sprintf("%d users have employeeId %q", len(found), employeeID)}
	}
}

// FindDeletedUserByEmployeeID looks among the soft-deleted users (kept 30 days) for the worker's
// account, so a rehire restores it instead of creating another.
func (c *Client) FindDeletedUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error) {
	filter := "employeeId eq '" + quote(employeeID) + "'"
	resp, err := c.graph.Directory().DeletedItems().GraphUser().Get(ctx, &graphdirectory.DeletedItemsGraphUserRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphdirectory.DeletedItemsGraphUserRequestBuilderGetQueryParameters{Filter: &filter, Select: userSelect},
	})
	if err != nil {
		return nil, classify("user.find-deleted", err)
	}
	if found := resp.GetValue(); len(found) > 0 {
		return toUser(found[0]), nil
	}
	return nil, nil
}

// RestoreUser brings a soft-deleted user back and returns it.
func (c *Client) RestoreUser(ctx context.Context, id string) (*directory.User, error) {
	if _, err := c.graph.Directory().DeletedItems().ByDirectoryObjectId(id).Restore().Post(ctx, nil); err != nil {
		return nil, classify("user.restore", err)
	}
	return c.GetUser(ctx, id)
}

// GetUser reads a user's managed properties.
func (c *Client) GetUser(ctx context.Context, id string) (*directory.User, error) {
	user, err := c.graph.Users().ByUserId(id).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect},
	})
	if err != nil {
		return nil, classify("user.get", err)
	}
	return toUser(user), nil
}

// CreateUser creates a user with an initial password that must be changed at first sign-in.
func (c *Client) CreateUser(ctx context.Context, attrs directory.UserAttributes, password string) (*directory.User, error) {
	user := models.NewUser()
	setUserFields(user, attrs, directory.UserFields, false)
	profile := models.NewPasswordProfile()
	profile.SetPassword(&password)
	profile.SetForceChangePasswordNextSignIn(ptr(true))
	user.SetPasswordProfile(profile)
	created, err := c.graph.Users().Post(ctx, user, nil)
	if err != nil {
		return nil, classify("user.create", err)
	}
	result := &directory.User{ID: deref(created.GetId()), UserAttributes: attrs}
	return result, nil
}

// UpdateUser changes only the given fields; an empty desired value clears the property.
func (c *Client) UpdateUser(ctx context.Context, id string, attrs directory.UserAttributes, fields []directory.Field) error {
	user := models.NewUser()
	setUserFields(user, attrs, fields, true)
	if _, err := c.graph.Users().ByUserId(id).Patch(ctx, user, nil); err != nil {
		return classify("user.update", err)
	}
	return nil
}

// ResetPassword gives a user a new password they must change at their next sign-in: PATCH
// /users/{id} with passwordProfile {password, forceChangePasswordNextSignIn: true}, Graph's way
// for an application to reset another user's password (least-privileged application permission
// User-PasswordProfile.ReadWrite.All; an administrator's password also needs a privileged Entra
// role). Graph answers 204; a password its policy refuses is 400 Request_BadRequest ("does not
// comply with password complexity requirements"), which names no password. The password leaves
// this process only in the request body.
func (c *Client) ResetPassword(ctx context.Context, userID string, password directory.Secret) error {
	if password.Empty() {
		return &directory.Error{Op: OpResetPassword, Class: directory.ClassInvalid, Code: "orgsync_EmptyPassword", Message: "no password to set"}
	}
	profile := models.NewPasswordProfile()
	profile.SetPassword(ptr(password.Reveal()))
	profile.SetForceChangePasswordNextSignIn(ptr(true))
	user := models.NewUser()
	user.SetPasswordProfile(profile)
	if _, err := c.graph.Users().ByUserId(userID).Patch(ctx, user, nil); err != nil {
		return classify(OpResetPassword, err)
	}
	return nil
}

// DeleteUser deletes a user (into Entra's recycle bin).
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	if err := c.graph.Users().ByUserId(id).Delete(ctx, nil); err != nil {
		return classify("user.delete", err)
	}
	return nil
}

var groupSelect = []string{"id", "displayName", "description", "mailNickname", "assignedLicenses"}

// FindGroupByMailNickname looks a group up by its mailNickname.
func (c *Client) FindGroupByMailNickname(ctx context.Context, mailNickname string) (*directory.Group, error) {
	filter := "mailNickname eq '" + quote(mailNickname) + "'"
	resp, err := c.graph.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: groupSelect},
	})
	if err != nil {
		return nil, classify("group.find", err)
	}
	switch found := resp.GetValue(); len(found) {
	case 0:
		return nil, nil
	case 1:
		return toGroup(found[0]), nil
	default:
		return nil, &directory.Error{Op: "group.find", Class: directory.ClassConflict, Code: "orgsync_DuplicateMailNickname",
			Message: fmt.Sprintf("%d groups have mailNickname %q", len(found), mailNickname)}
	}
}

// GetGroup reads a group.
func (c *Client) GetGroup(ctx context.Context, id string) (*directory.Group, error) {
	group, err := c.graph.Groups().ByGroupId(id).Get(ctx, &groups.GroupItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.GroupItemRequestBuilderGetQueryParameters{Select: groupSelect},
	})
	if err != nil {
		return nil, classify("group.get", err)
	}
	return toGroup(group), nil
}

// CreateGroup creates a security group that is not mail-enabled.
func (c *Client) CreateGroup(ctx context.Context, attrs directory.GroupAttributes) (*directory.Group, error) {
	group := models.NewGroup()
	group.SetDisplayName(&attrs.DisplayName)
	if attrs.Description != "" {
		group.SetDescription(&attrs.Description)
	}
	group.SetMailNickname(&attrs.MailNickname)
	group.SetSecurityEnabled(ptr(true))
	group.SetMailEnabled(ptr(false))
	created, err := c.graph.Groups().Post(ctx, group, nil)
	if err != nil {
		return nil, classify("group.create", err)
	}
	return &directory.Group{ID: deref(created.GetId()), GroupAttributes: attrs}, nil
}

// UpdateGroup sets the group's display name and description.
func (c *Client) UpdateGroup(ctx context.Context, id string, attrs directory.GroupAttributes) error {
	group := models.NewGroup()
	group.SetDisplayName(&attrs.DisplayName)
	group.SetDescription(&attrs.Description)
	if _, err := c.graph.Groups().ByGroupId(id).Patch(ctx, group, nil); err != nil {
		return classify("group.update", err)
	}
	return nil
}

// DeleteGroup deletes a group.
func (c *Client) DeleteGroup(ctx context.Context, id string) error {
	if err := c.graph.Groups().ByGroupId(id).Delete(ctx, nil); err != nil {
		return classify("group.delete", err)
	}
	return nil
}

// AddMember adds a user or group to a group. Graph answers 400 Request_BadRequest when the
// reference already exists; that is success.
func (c *Client) AddMember(ctx context.Context, groupID, memberID string) error {
	ref := models.NewReferenceCreate()
	ref.SetOdataId(ptr(c.baseURL + "/directoryObjects/" + memberID))
	err := c.graph.Groups().ByGroupId(groupID).Members().Ref().Post(ctx, ref, nil)
	if err == nil {
		return nil
	}
	dirErr := classify("member.add", err)
	if e, ok := dirErr.(*directory.Error); ok && e.Status == http.StatusBadRequest && e.Code == "Request_BadRequest" {
		return nil
	}
	return dirErr
}

// MaxBind is the most members one "members@odata.bind" PATCH may add.
const MaxBind = 20

// AddMembers adds up to MaxBind members in one PATCH of the group. Graph applies it all or
// nothing: if one of them is already a member the whole PATCH fails with 400 Request_BadRequest,
// and the caller falls back to adding them one by one.
func (c *Client) AddMembers(ctx context.Context, groupID string, memberIDs []string) error {
	if len(memberIDs) > MaxBind {
		return fmt.Errorf("member.bind: %d members, at most %d per request", len(memberIDs), MaxBind)
	}
	refs := make([]string, len(memberIDs))
	for i, id := range memberIDs {
		refs[i] = c.baseURL + "/directoryObjects/" + id
	}
	group := models.NewGroup()
	group.SetAdditionalData(map[string]any{"members@odata.bind": refs})
	if _, err := c.graph.Groups().ByGroupId(groupID).Patch(ctx, group, nil); err != nil {
		return classify("member.bind", err)
	}
	return nil
}

// RemoveMembers removes up to 20 memberships in one $batch of DELETE $ref requests and reads
// every item's answer: 204 and 404 (not a member) are success, a 429 item carries its own
// Retry-After — the SDK does not retry inside a batch, so the caller retries that item alone.
func (c *Client) RemoveMembers(ctx context.Context, refs []directory.MemberRef) []error {
	errs := make([]error, len(refs))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if len(refs) > MaxBind {
		return fail(fmt.Errorf("member.remove: %d removals, at most %d per $batch", len(refs), MaxBind))
	}
	batch := msgraphcore.NewBatchRequest(c.adapter)
	ids := make([]string, len(refs))
	for i, ref := range refs {
		info, err := c.graph.Groups().ByGroupId(ref.GroupID).Members().ByDirectoryObjectId(ref.MemberID).Ref().ToDeleteRequestInformation(ctx, nil)
		if err != nil {
			return fail(fmt.Errorf("member.remove: %w", err))
		}
		item, err := batch.AddBatchRequestStep(*info)
		if err != nil {
			return fail(fmt.Errorf("member.remove: %w", err))
		}
		ids[i] = deref(item.GetId())
	}
	resp, err := batch.Send(ctx, c.adapter)
	if err != nil {
		return fail(classify("member.remove", err))
	}
	for i, id := range ids {
		item := resp.GetResponseById(id)
		if item == nil {
			errs[i] = &directory.Error{Op: "member.remove", Class: directory.ClassTransient, Message: "no answer for this $batch item"}
			continue
		}
		errs[i] = batchItemError("member.remove", item)
		var dirErr *directory.Error
		switch {
		case directory.ClassOf(errs[i]) == directory.ClassNotFound:
			errs[i] = nil
		case c.throttle != nil && errors.As(errs[i], &dirErr) && dirErr.Class == directory.ClassThrottled && dirErr.RetryAfter > 0:
			// Throttled inside the batch: the app is, for every call (see ThrottleTransport).
			_ = c.throttle.Pause(ctx, dirErr.RetryAfter)
		}
	}
	return errs
}

// batchItemError classifies one $batch item's answer, by status and Graph error code.
func batchItemError(op string, item msgraphcore.BatchItem) error {
	status := int(deref(item.GetStatus()))
	if status >= 200 && status < 300 {
		return nil
	}
	dirErr := &directory.Error{Op: op, Status: status, Class: directory.Classify(status)}
	if body := item.GetBody(); body != nil {
		if envelope, ok := body["error"].(map[string]any); ok {
			dirErr.Code, _ = envelope["code"].(string)
			dirErr.Message, _ = envelope["message"].(string)
			detailCode, target := "", ""
			if details, ok := envelope["details"].([]any); ok && len(details) > 0 {
				if detail, ok := details[0].(map[string]any); ok {
					detailCode, _ = detail["code"].(string)
					target, _ = detail["target"].(string)
				}
			}
			dirErr.RefineBadRequest(detailCode, target)
		}
	}
	if headers := item.GetHeaders(); headers != nil {
		for name, value := range headers {
			if strings.EqualFold(name, "Retry-After") {
				if seconds, err := strconv.Atoi(strings.TrimSpace(value)); err == nil {
					dirErr.RetryAfter = time.Duration(seconds) * time.Second
				}
			}
		}
	}
	return dirErr
}

// SetManager points a user's manager reference at another user.
func (c *Client) SetManager(ctx context.Context, userID, managerID string) error {
	ref := models.NewReferenceUpdate()
	ref.SetOdataId(ptr(c.baseURL + "/users/" + managerID))
	if err := c.graph.Users().ByUserId(userID).Manager().Ref().Put(ctx, ref, nil); err != nil {
		return classify("manager.set", err)
	}
	return nil
}

// RemoveManager takes a user's manager link away (DELETE /users/{id}/manager/$ref). Graph
// answers 404 when the user has no manager: there is no link, which is what was asked (as in
// GetManager, a 404 does not tell a missing link from a missing user; the user's own read and
// update find the latter).
func (c *Client) RemoveManager(ctx context.Context, userID string) error {
	err := c.graph.Users().ByUserId(userID).Manager().Ref().Delete(ctx, nil)
	if err == nil {
		return nil
	}
	if err = classify("manager.remove", err); directory.ClassOf(err) == directory.ClassNotFound {
		return nil
	}
	return err
}

// GetManager returns the object id of a user's manager; "" when the user has none (Graph
// answers 404).
func (c *Client) GetManager(ctx context.Context, userID string) (string, error) {
	manager, err := c.graph.Users().ByUserId(userID).Manager().Get(ctx, &users.ItemManagerRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemManagerRequestBuilderGetQueryParameters{Select: []string{"id"}},
	})
	if err != nil {
		err = classify("manager.get", err)
		if directory.ClassOf(err) == directory.ClassNotFound {
			return "", nil
		}
		return "", err
	}
	return deref(manager.GetId()), nil
}

// GetUserByPrincipalName reads a user by userPrincipalName; (nil, nil) when there is none.
func (c *Client) GetUserByPrincipalName(ctx context.Context, principalName string) (*directory.User, error) {
	user, err := c.GetUser(ctx, principalName)
	if directory.ClassOf(err) == directory.ClassNotFound {
		return nil, nil
	}
	return user, err
}

// RevokeSignInSessions invalidates every sign-in session of a user (POST
// /users/{id}/revokeSignInSessions, permission User.RevokeSessions.All): Graph resets the user's
// signInSessionsValidFromDateTime to now and answers {"value": true}. An answer of false is
// reported as a transient failure, so that the writer tries again.
func (c *Client) RevokeSignInSessions(ctx context.Context, userID string) error {
	resp, err := c.graph.Users().ByUserId(userID).RevokeSignInSessions().PostAsRevokeSignInSessionsPostResponse(ctx, nil)
	if err != nil {
		return classify("user.revoke-sessions", err)
	}
	if resp == nil || !deref(resp.GetValue()) {
		return &directory.Error{Op: "user.revoke-sessions", Class: directory.ClassTransient, Status: http.StatusOK,
			Message: "Graph answered that the sessions were not revoked"}
	}
	return nil
}

// CreateTemporaryAccessPass gives a user a Temporary Access Pass (POST
// /users/{id}/authentication/temporaryAccessPassMethods, permission
// UserAuthenticationMethod.ReadWrite.All); a user has one pass, so it replaces any earlier one.
// The answer is the only one that carries the pass; it goes into the returned Secret and nowhere
// else (errors are Graph's error envelope, which never holds it).
func (c *Client) CreateTemporaryAccessPass(ctx context.Context, userID string, start time.Time, lifetimeMinutes int, usableOnce bool) (*directory.AccessPass, error) {
	body := models.NewTemporaryAccessPassAuthenticationMethod()
	body.SetStartDateTime(&start)
	lifetime := int32(lifetimeMinutes)
	body.SetLifetimeInMinutes(&lifetime)
	body.SetIsUsableOnce(&usableOnce)
	created, err := c.graph.Users().ByUserId(userID).Authentication().TemporaryAccessPassMethods().Post(ctx, body, nil)
	if err != nil {
		return nil, classify(OpCreateAccessPass, err)
	}
	if created == nil || deref(created.GetTemporaryAccessPass()) == "" || deref(created.GetId()) == "" {
		return nil, &directory.Error{Op: OpCreateAccessPass, Class: directory.ClassTransient, Status: http.StatusCreated,
			Message: "Graph's answer carries no Temporary Access Pass"}
	}
	pass := &directory.AccessPass{ID: deref(created.GetId()), Secret: directory.NewSecret(deref(created.GetTemporaryAccessPass())),
		Start: start, LifetimeMinutes: lifetimeMinutes, IsUsableOnce: usableOnce}
	if granted := created.GetStartDateTime(); granted != nil {
		pass.Start = *granted
	}
	if granted := created.GetLifetimeInMinutes(); granted != nil {
		pass.LifetimeMinutes = int(*granted)
	}
	if granted := created.GetIsUsableOnce(); granted != nil {
		pass.IsUsableOnce = *granted
	}
	return pass, nil
}

// DeleteTemporaryAccessPass deletes a user's Temporary Access Pass; one already gone is success.
func (c *Client) DeleteTemporaryAccessPass(ctx context.Context, userID, passID string) error {
	err := c.graph.Users().ByUserId(userID).Authentication().TemporaryAccessPassMethods().ByTemporaryAccessPassAuthenticationMethodId(passID).Delete(ctx, nil)
	if err != nil {
		if err := classify(OpDeleteAccessPass, err); directory.ClassOf(err) != directory.ClassNotFound {
			return err
		}
	}
	return nil
}

// SendMail sends a plain-text message from the sender's mailbox (POST /users/{id}/sendMail,
// permission Mail.Send, best restricted to that mailbox by an application access policy),
// without keeping a copy in its Sent Items: the message may carry a credential.
func (c *Client) SendMail(ctx context.Context, senderID string, mail directory.Mail) error {
	message := models.NewMessage()
	message.SetSubject(&mail.Subject)
	content := models.NewItemBody()
	text := models.TEXT_BODYTYPE
	content.SetContentType(&text)
	content.SetContent(&mail.Body)
	message.SetBody(content)
	recipients := make([]models.Recipientable, 0, len(mail.To))
	for _, to := range mail.To {
		address := models.NewEmailAddress()
		address.SetAddress(&to)
		recipient := models.NewRecipient()
		recipient.SetEmailAddress(address)
		recipients = append(recipients, recipient)
	}
	message.SetToRecipients(recipients)
	body := users.NewItemSendMailPostRequestBody()
	body.SetMessage(message)
	save := false
	body.SetSaveToSentItems(&save)
	if err := c.graph.Users().ByUserId(senderID).SendMail().Post(ctx, body, nil); err != nil {
		err = classify(OpSendMail, err)
		var dirErr *directory.Error
		if errors.As(err, &dirErr) && dirErr.Class == directory.ClassNotFound {
			// The sender has no mailbox (MailboxNotEnabledForRESTAPI) or is not a user
			// (ErrorInvalidUser): the configuration is wrong, waiting does not help.
			dirErr.Class = directory.ClassInvalid
		}
		return err
	}
	return nil
}

// Operations of credentials, in errors.
const (
	OpCreateAccessPass = "user.temporary-access-pass.create"
	OpDeleteAccessPass = "user.temporary-access-pass.delete"
	OpSendMail         = "mail.send"
	OpResetPassword    = "user.password.reset"
)

// RemoveMember removes a member; Graph answers 404 when it is not one, which is success.
func (c *Client) RemoveMember(ctx context.Context, groupID, memberID string) error {
	err := c.graph.Groups().ByGroupId(groupID).Members().ByDirectoryObjectId(memberID).Ref().Delete(ctx, nil)
	if err != nil && directory.ClassOf(classify("member.remove", err)) != directory.ClassNotFound {
		return classify("member.remove", err)
	}
	return nil
}

// setUserFields copies the listed fields of attrs onto user. With clear, an empty value is sent as
// null so that Graph clears the property; without it, empty values are left out.
func setUserFields(user *models.User, attrs directory.UserAttributes, fields []directory.Field, clear bool) {
	nulls, extensions := map[string]any{}, map[string]any{}
	str := func(field directory.Field, value string, set func(*string)) {
		switch {
		case value != "":
			set(&value)
		case clear:
			nulls[string(field)] = nil
		}
	}
	for _, field := range fields {
		switch field {
		case directory.FieldAccountEnabled:
			user.SetAccountEnabled(ptr(attrs.AccountEnabled))
		case directory.FieldDisplayName:
			str(field, attrs.DisplayName, user.SetDisplayName)
		case directory.FieldGivenName:
			str(field, attrs.GivenName, user.SetGivenName)
		case directory.FieldSurname:
			str(field, attrs.Surname, user.SetSurname)
		case directory.FieldUserPrincipalName:
			str(field, attrs.UserPrincipalName, user.SetUserPrincipalName)
		case directory.FieldMailNickname:
			str(field, attrs.MailNickname, user.SetMailNickname)
		case directory.FieldMail:
			str(field, attrs.Mail, user.SetMail)
		case directory.FieldJobTitle:
			str(field, attrs.JobTitle, user.SetJobTitle)
		case directory.FieldDepartment:
			str(field, attrs.Department, user.SetDepartment)
		case directory.FieldCompanyName:
			str(field, attrs.CompanyName, user.SetCompanyName)
		case directory.FieldOfficeLocation:
			str(field, attrs.OfficeLocation, user.SetOfficeLocation)
		case directory.FieldEmployeeID:
			str(field, attrs.EmployeeID, user.SetEmployeeId)
		case directory.FieldEmployeeType:
			str(field, attrs.EmployeeType, user.SetEmployeeType)
		case directory.FieldEmployeeHireDate:
			if attrs.EmployeeHireDate != nil {
				user.SetEmployeeHireDate(attrs.EmployeeHireDate)
			} else if clear {
				nulls[string(field)] = nil
			}
		case directory.FieldEmployeeLeaveDateTime:
			if attrs.EmployeeLeaveDateTime != nil {
				user.SetEmployeeLeaveDateTime(attrs.EmployeeLeaveDateTime)
			} else if clear {
				nulls[string(field)] = nil
			}
		case directory.FieldEmployeeOrgData:
			if attrs.CostCenter != "" || attrs.Division != "" || clear {
				orgData := models.NewEmployeeOrgData()
				orgData.SetCostCenter(&attrs.CostCenter)
				orgData.SetDivision(&attrs.Division)
				user.SetEmployeeOrgData(orgData)
			}
		case directory.FieldBusinessPhones:
			if len(attrs.BusinessPhones) > 0 || clear {
				user.SetBusinessPhones(append([]string{}, attrs.BusinessPhones...))
			}
		case directory.FieldOnPremisesExtensionAttributes:
			// On create: every extension attribute the policy maps that has a value.
			for _, name := range directory.MappedProperties {
				if directory.IsExtensionAttribute(directory.Field(name)) && attrs.Mapped[name] != "" {
					extensions[name] = attrs.Mapped[name]
				}
			}
		default:
			value := attrs.Mapped[string(field)]
			switch {
			case directory.IsExtensionAttribute(field) && value != "":
				extensions[string(field)] = value
			case directory.IsExtensionAttribute(field) && clear:
				extensions[string(field)] = nil
			case mappedSetters[field] != nil:
				str(field, value, func(v *string) { mappedSetters[field](user, v) })
			}
		}
	}
	if len(extensions) > 0 {
		// Graph updates the attributes named and keeps the others; null clears one.
		ext := models.NewOnPremisesExtensionAttributes()
		ext.SetAdditionalData(extensions)
		user.SetOnPremisesExtensionAttributes(ext)
	}
	if len(nulls) > 0 {
		user.SetAdditionalData(nulls)
	}
}

// mappedSetters write the plain mapped properties (directory.MappedProperties but the extension
// attributes) onto a Graph user.
var mappedSetters = map[directory.Field]func(*models.User, *string){
	"usageLocation":     (*models.User).SetUsageLocation,
	"city":              (*models.User).SetCity,
	"country":           (*models.User).SetCountry,
	"state":             (*models.User).SetState,
	"streetAddress":     (*models.User).SetStreetAddress,
	"postalCode":        (*models.User).SetPostalCode,
	"mobilePhone":       (*models.User).SetMobilePhone,
	"preferredLanguage": (*models.User).SetPreferredLanguage,
}

// mappedValues read the mapped properties from a Graph user.
func mappedValues(u models.Userable) map[string]string {
	values := map[string]string{}
	for name, value := range map[string]*string{
		"usageLocation": u.GetUsageLocation(), "city": u.GetCity(), "country": u.GetCountry(),
		"state": u.GetState(), "streetAddress": u.GetStreetAddress(), "postalCode": u.GetPostalCode(),
		"mobilePhone": u.GetMobilePhone(), "preferredLanguage": u.GetPreferredLanguage(),
	} {
		if deref(value) != "" {
			values[name] = *value
		}
	}
	if ext := u.GetOnPremisesExtensionAttributes(); ext != nil {
		for name, value := range map[string]*string{
			"extensionAttribute1": ext.GetExtensionAttribute1(), "extensionAttribute2": ext.GetExtensionAttribute2(),
			"extensionAttribute3": ext.GetExtensionAttribute3(), "extensionAttribute4": ext.GetExtensionAttribute4(),
			"extensionAttribute5": ext.GetExtensionAttribute5(), "extensionAttribute6": ext.GetExtensionAttribute6(),
			"extensionAttribute7": ext.GetExtensionAttribute7(), "extensionAttribute8": ext.GetExtensionAttribute8(),
			"extensionAttribute9": ext.GetExtensionAttribute9(), "extensionAttribute10": ext.GetExtensionAttribute10(),
			"extensionAttribute11": ext.GetExtensionAttribute11(), "extensionAttribute12": ext.GetExtensionAttribute12(),
			"extensionAttribute13": ext.GetExtensionAttribute13(), "extensionAttribute14": ext.GetExtensionAttribute14(),
			"extensionAttribute15": ext.GetExtensionAttribute15(),
		} {
			if deref(value) != "" {
				values[name] = *value
			}
		}
	}
	if len(values) == 0 {
		return nil
	}
	return values
}

func toUser(u models.Userable) *directory.User {
	user := &directory.User{ID: deref(u.GetId()), UserAttributes: directory.UserAttributes{
		AccountEnabled: deref(u.GetAccountEnabled()), DisplayName: deref(u.GetDisplayName()),
		GivenName: deref(u.GetGivenName()), Surname: deref(u.GetSurname()),
		UserPrincipalName: deref(u.GetUserPrincipalName()), MailNickname: deref(u.GetMailNickname()),
		Mail: deref(u.GetMail()), JobTitle: deref(u.GetJobTitle()), Department: deref(u.GetDepartment()),
		CompanyName: deref(u.GetCompanyName()), OfficeLocation: deref(u.GetOfficeLocation()),
		EmployeeID: deref(u.GetEmployeeId()), EmployeeType: deref(u.GetEmployeeType()),
		EmployeeHireDate: u.GetEmployeeHireDate(), EmployeeLeaveDateTime: u.GetEmployeeLeaveDateTime(),
		BusinessPhones: u.GetBusinessPhones(),
	}}
	if orgData := u.GetEmployeeOrgData(); orgData != nil {
		user.CostCenter, user.Division = deref(orgData.GetCostCenter()), deref(orgData.GetDivision())
	}
	if len(user.BusinessPhones) == 0 {
		user.BusinessPhones = nil
	}
	user.Mapped = mappedValues(u)
	user.SignInSessionsValidFrom = u.GetSignInSessionsValidFromDateTime()
	return user
}

func toGroup(g models.Groupable) *directory.Group {
	group := &directory.Group{ID: deref(g.GetId()), GroupAttributes: directory.GroupAttributes{
		DisplayName: deref(g.GetDisplayName()), Description: deref(g.GetDescription()), MailNickname: deref(g.GetMailNickname()),
	}}
	for _, assigned := range g.GetAssignedLicenses() {
		license := directory.License{SkuID: uuidString(assigned.GetSkuId())}
		for _, plan := range assigned.GetDisabledPlans() {
			license.DisabledPlans = append(license.DisabledPlans, plan.String())
		}
		group.Licenses = append(group.Licenses, license)
	}
	return group
}

func uuidString(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// parseGUIDs reads GUIDs for the SDK; an id that is not one is an invalid request, never sent.
func parseGUIDs(op string, ids []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		parsed, err := uuid.Parse(id)
		if err != nil {
			return nil, &directory.Error{Op: op, Class: directory.ClassInvalid, Code: "orgsync_InvalidGuid",
				Message: fmt.Sprintf("%q is not a GUID: %v", id, err)}
		}
		out[i] = parsed
	}
	return out, nil
}

// AssignGroupLicenses calls POST /groups/{id}/assignLicense (least-privileged application
// permission LicenseAssignment.ReadWrite.All) with the licences to add and the SKU ids to remove;
// Graph answers 202 and licenses the members in the background.
func (c *Client) AssignGroupLicenses(ctx context.Context, groupID string, add []directory.License, remove []string) error {
	const op = "group.assign-license"
	body := groups.NewItemAssignLicensePostRequestBody()
	addLicenses := make([]models.AssignedLicenseable, 0, len(add))
	for _, license := range add {
		ids, err := parseGUIDs(op, append([]string{license.SkuID}, license.DisabledPlans...))
		if err != nil {
			return err
		}
		assigned := models.NewAssignedLicense()
		assigned.SetSkuId(&ids[0])
		assigned.SetDisabledPlans(ids[1:])
		addLicenses = append(addLicenses, assigned)
	}
	removeLicenses, err := parseGUIDs(op, remove)
	if err != nil {
		return err
	}
	body.SetAddLicenses(addLicenses)
	body.SetRemoveLicenses(removeLicenses)
	if _, err := c.graph.Groups().ByGroupId(groupID).AssignLicense().Post(ctx, body, nil); err != nil {
		return classify(op, err)
	}
	return nil
}

// GroupLicenseErrors reads GET /groups/{id}/membersWithLicenseErrors and, for each member it
// lists, the member's licenseAssignmentStates, keeping those this group assigns that are in
// error. Reads only.
func (c *Client) GroupLicenseErrors(ctx context.Context, groupID string) ([]directory.LicenseError, error) {
	const op = "group.license-errors"
	resp, err := c.graph.Groups().ByGroupId(groupID).MembersWithLicenseErrors().Get(ctx, &groups.ItemMembersWithLicenseErrorsRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.ItemMembersWithLicenseErrorsRequestBuilderGetQueryParameters{Select: []string{"id"}},
	})
	if err != nil {
		return nil, classify(op, err)
	}
	var memberIDs []string
	for {
		for _, member := range resp.GetValue() {
			memberIDs = append(memberIDs, deref(member.GetId()))
		}
		next := deref(resp.GetOdataNextLink())
		if next == "" {
			break
		}
		if resp, err = c.graph.Groups().ByGroupId(groupID).MembersWithLicenseErrors().WithUrl(next).Get(ctx, nil); err != nil {
			return nil, classify(op, err)
		}
	}
	var licenseErrors []directory.LicenseError
	for _, memberID := range memberIDs {
		user, err := c.graph.Users().ByUserId(memberID).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: []string{"id", "licenseAssignmentStates"}},
		})
		if err != nil {
			if err = classify(op, err); directory.ClassOf(err) == directory.ClassNotFound {
				continue // deleted since the list was read
			}
			return nil, err
		}
		for _, state := range user.GetLicenseAssignmentStates() {
			if strings.EqualFold(deref(state.GetAssignedByGroup()), groupID) && deref(state.GetState()) == "Error" {
				licenseErrors = append(licenseErrors, directory.LicenseError{UserID: memberID, SkuID: uuidString(state.GetSkuId()), Error: deref(state.GetError())})
			}
		}
	}
	return licenseErrors, nil
}

// classify turns an SDK error into a directory.Error by HTTP status and Graph error code; other
// errors (network, context) are returned wrapped as they are.
func classify(op string, err error) error {
	var odataErr *odataerrors.ODataError
	if errors.As(err, &odataErr) {
		dirErr := &directory.Error{Op: op, Status: odataErr.ResponseStatusCode, Class: directory.Classify(odataErr.ResponseStatusCode)}
		detailCode, target := "", ""
		if main := odataErr.GetErrorEscaped(); main != nil {
			dirErr.Code, dirErr.Message = deref(main.GetCode()), deref(main.GetMessage())
			target = deref(main.GetTarget())
			for _, detail := range main.GetDetails() {
				if code := deref(detail.GetCode()); code != "" && detailCode == "" {
					detailCode, target = code, deref(detail.GetTarget())
				}
			}
		}
		dirErr.RefineBadRequest(detailCode, target)
		dirErr.RetryAfter = retryAfter(odataErr.ResponseHeaders)
		return dirErr
	}
	var apiErr *abstractions.ApiError
	if errors.As(err, &apiErr) {
		return &directory.Error{Op: op, Status: apiErr.ResponseStatusCode, Class: directory.Classify(apiErr.ResponseStatusCode),
			Message: apiErr.Message, RetryAfter: retryAfter(apiErr.ResponseHeaders)}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func retryAfter(headers *abstractions.ResponseHeaders) time.Duration {
	if headers == nil {
		return 0
	}
	for _, value := range headers.Get("Retry-After") {
		if wait, ok := parseRetryAfter(value); ok {
			return wait
		}
	}
	return 0
}

// parseRetryAfter reads a Retry-After value: whole seconds or an HTTP date.
func parseRetryAfter(value string) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if seconds, err := strconv.Atoi(value); err == nil && seconds >= 0 {
		return time.Duration(seconds) * time.Second, true
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(time.Until(at), 0), true
	}
	return 0, false
}

// quote escapes a value for an OData string literal.
func quote(s string) string { return strings.ReplaceAll(s, "'", "''") }

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
