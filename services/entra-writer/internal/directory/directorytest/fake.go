// Package directorytest provides an in-memory Entra directory for tests and the contract suite
// that every implementation of the writer's Directory port must pass — the fake here and the Graph
// client against the emulator alike — so the fake cannot drift from Graph's behaviour.
package directorytest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// Fake is an in-memory directory with Graph's semantics. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	nextID  int
	users   map[string]directory.User
	groups  map[string]directory.Group
	members map[string]map[string]bool
	manager map[string]string
	deleted map[string]directory.User
	// skus are the subscriptions (Subscribe): prepaid units and service plans by SKU id.
	skus map[string]fakeSku
	// passes are the users' Temporary Access Passes, by user id.
	passes map[string]directory.AccessPass
	// mail is every message SendMail accepted.
	mail []FakeMail
	// resets are the passwords ResetPassword set, by user id.
	resets map[string]FakePassword
	// Writes counts successful write calls by operation, e.g. "user.create".
	Writes map[string]int
	// Fail, when set, is consulted before each call; a non-nil error is returned instead.
	Fail func(op string) error
}

// NewFake returns an empty directory.
func NewFake() *Fake {
	return &Fake{
		users: map[string]directory.User{}, groups: map[string]directory.Group{}, members: map[string]map[string]bool{},
		manager: map[string]string{}, deleted: map[string]directory.User{}, Writes: map[string]int{},
		skus: map[string]fakeSku{}, passes: map[string]directory.AccessPass{},
		resets: map[string]FakePassword{},
	}
}

type fakeSku struct {
	prepaid int
	plans   []string
}

// Subscribe gives the tenant prepaid units of a SKU with the given service plans.
func (f *Fake) Subscribe(skuID string, prepaidUnits int, planIDs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skus[strings.ToLower(skuID)] = fakeSku{prepaid: prepaidUnits, plans: planIDs}
}

func licenseRefused(message string) error {
	return &directory.Error{Op: "group.assign-license", Class: directory.ClassInvalid, Status: 400, Code: "Request_BadRequest", Message: message}
}

// AssignGroupLicenses implements the Directory port with Graph's refusals: an unknown SKU, a
// disabled plan not of the SKU, the removal of a SKU the group does not have.
func (f *Fake) AssignGroupLicenses(_ context.Context, groupID string, add []directory.License, remove []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.assign-license"); err != nil {
		return err
	}
	for _, license := range add {
		sku, ok := f.skus[strings.ToLower(license.SkuID)]
		if !ok {
			return licenseRefused("License " + license.SkuID + " does not correspond to a valid company License.")
		}
		for _, plan := range license.DisabledPlans {
			if !slices.ContainsFunc(sku.plans, func(p string) bool { return strings.EqualFold(p, plan) }) {
				return licenseRefused("Service plan " + plan + " is not part of license " + license.SkuID + ".")
			}
		}
	}
	g, ok := f.groups[groupID]
	if !ok {
		return notFound("group.assign-license", groupID)
	}
	kept := slices.Clone(g.Licenses)
	for _, sku := range remove {
		at := slices.IndexFunc(kept, func(l directory.License) bool { return strings.EqualFold(l.SkuID, sku) })
		if at < 0 {
			return licenseRefused("License " + sku + " is not assigned to the group and cannot be removed.")
		}
		kept = slices.Delete(kept, at, at+1)
	}
	for _, license := range add {
		license.SkuID = strings.ToLower(license.SkuID)
		if at := slices.IndexFunc(kept, func(l directory.License) bool { return l.SkuID == license.SkuID }); at >= 0 {
			kept[at] = license
		} else {
			kept = append(kept, license)
		}
	}
	g.Licenses = kept
	f.groups[groupID] = g
	f.Writes["group.assign-license"]++
	return nil
}

// GroupLicenseErrors implements the Directory port as group-based licensing settles: groups and
// members in id order; one unit of a SKU per user; beyond the prepaid units a CountViolation; a
// member without usageLocation (the fake's tenant has none) a ProhibitedInUsageLocationViolation.
func (f *Fake) GroupLicenseErrors(_ context.Context, groupID string) ([]directory.LicenseError, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.license-errors"); err != nil {
		return nil, err
	}
	if _, ok := f.groups[groupID]; !ok {
		return nil, notFound("group.license-errors", groupID)
	}
	consumed, active := map[string]int{}, map[string]bool{}
	var errs []directory.LicenseError
	for _, gid := range slices.Sorted(maps.Keys(f.groups)) {
		for _, license := range f.groups[gid].Licenses {
			for _, memberID := range slices.Sorted(maps.Keys(f.members[gid])) {
				user, isUser := f.users[memberID]
				if !isUser {
					continue
				}
				problem := ""
				switch {
				case user.Mapped["usageLocation"] == "":
					problem = "ProhibitedInUsageLocationViolation"
				case active[memberID+"/"+license.SkuID]:
				case consumed[license.SkuID] >= f.skus[license.SkuID].prepaid:
					problem = "CountViolation"
				default:
					consumed[license.SkuID]++
					active[memberID+"/"+license.SkuID] = true
				}
				if problem != "" && gid == groupID {
					errs = append(errs, directory.LicenseError{UserID: memberID, SkuID: license.SkuID, Error: problem})
				}
			}
		}
	}
	return errs, nil
}

func (f *Fake) enter(op string) error {
	if f.Fail != nil {
		return f.Fail(op)
	}
	return nil
}

func (f *Fake) newID() string {
	f.nextID++
	return fmt.Sprintf("00000000-0000-0000-0000-%012d", f.nextID)
}

func notFound(op, id string) error {
	return &directory.Error{Op: op, Class: directory.ClassNotFound, Status: 404, Code: "Request_ResourceNotFound",
		Message: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)}
}

// FindUserByEmployeeID implements the Directory port.
func (f *Fake) FindUserByEmployeeID(_ context.Context, employeeID string) (*directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.find"); err != nil {
		return nil, err
	}
	for _, u := range f.users {
		if u.EmployeeID == employeeID {
			return &u, nil
		}
	}
	return nil, nil
}

// GetUser implements the Directory port.
func (f *Fake) GetUser(_ context.Context, id string) (*directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.get"); err != nil {
		return nil, err
	}
	u, ok := f.users[id]
	if !ok {
		return nil, notFound("user.get", id)
	}
	return &u, nil
}

// CreateUser implements the Directory port.
func (f *Fake) CreateUser(_ context.Context, attrs directory.UserAttributes, password string) (*directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.create"); err != nil {
		return nil, err
	}
	if password == "" {
		return nil, &directory.Error{Op: "user.create", Class: directory.ClassInvalid, Status: 400, Code: "Request_BadRequest", Message: "passwordProfile is required"}
	}
	if strings.IndexFunc(attrs.UserPrincipalName, func(r rune) bool { return r > unicode.MaxASCII || r == ' ' }) >= 0 {
		// Graph refuses diacritics and spaces; the emulator applies every rule, the fake this one.
		return nil, &directory.Error{Op: "user.create", Class: directory.ClassInvalid, Status: 400, Code: "Request_BadRequest",
			Message: "Property userPrincipalName is invalid.", Property: "userPrincipalName"}
	}
	for _, u := range append(slices.Collect(maps.Values(f.users)), slices.Collect(maps.Values(f.deleted))...) {
		if strings.EqualFold(u.UserPrincipalName, attrs.UserPrincipalName) {
			return nil, &directory.Error{Op: "user.create", Class: directory.ClassConflict, Status: 400, Code: "Request_BadRequest",
				Message: "Another object with the same value for property userPrincipalName already exists.", Property: "userPrincipalName"}
		}
	}
	if err := checkMapped("user.create", attrs); err != nil {
		return nil, err
	}
	createdAt := time.Now()
	u := directory.User{ID: f.newID(), UserAttributes: attrs, SignInSessionsValidFrom: &createdAt}
	u.Mapped = applyMapped(nil, attrs, attrs.MappedFields())
	f.users[u.ID] = u
	f.Writes["user.create"]++
	return &u, nil
}

// UpdateUser implements the Directory port.
func (f *Fake) UpdateUser(_ context.Context, id string, attrs directory.UserAttributes, fields []directory.Field) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.update"); err != nil {
		return err
	}
	u, ok := f.users[id]
	if !ok {
		return notFound("user.update", id)
	}
	if err := checkMapped("user.update", attrs); err != nil {
		return err
	}
	// The fake stores the whole desired state, but for the mapped properties, which, as in Graph,
	// change only when named (an empty value clears one).
	mapped := applyMapped(u.Mapped, attrs, fields)
	u.UserAttributes = attrs
	u.Mapped = mapped
	f.users[id] = u
	f.Writes["user.update"]++
	return nil
}

// DeleteUser implements the Directory port.
func (f *Fake) DeleteUser(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.delete"); err != nil {
		return err
	}
	user, ok := f.users[id]
	if !ok {
		return notFound("user.delete", id)
	}
	delete(f.users, id)
	f.deleted[id] = user
	for _, members := range f.members {
		delete(members, id)
	}
	f.Writes["user.delete"]++
	return nil
}

// FindDeletedUserByEmployeeID implements the Directory port.
func (f *Fake) FindDeletedUserByEmployeeID(_ context.Context, employeeID string) (*directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.find-deleted"); err != nil {
		return nil, err
	}
	for _, u := range f.deleted {
		if u.EmployeeID == employeeID {
			return &u, nil
		}
	}
	return nil, nil
}

// RestoreUser implements the Directory port.
func (f *Fake) RestoreUser(_ context.Context, id string) (*directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.restore"); err != nil {
		return nil, err
	}
	user, ok := f.deleted[id]
	if !ok {
		return nil, notFound("user.restore", id)
	}
	delete(f.deleted, id)
	f.users[id] = user
	f.Writes["user.restore"]++
	return &user, nil
}

// FindGroupByMailNickname implements the Directory port.
func (f *Fake) FindGroupByMailNickname(_ context.Context, mailNickname string) (*directory.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.find"); err != nil {
		return nil, err
	}
	for _, g := range f.groups {
		if g.MailNickname == mailNickname {
			return &g, nil
		}
	}
	return nil, nil
}

// GetGroup implements the Directory port.
func (f *Fake) GetGroup(_ context.Context, id string) (*directory.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.get"); err != nil {
		return nil, err
	}
	g, ok := f.groups[id]
	if !ok {
		return nil, notFound("group.get", id)
	}
	return &g, nil
}

// CreateGroup implements the Directory port.
func (f *Fake) CreateGroup(_ context.Context, attrs directory.GroupAttributes) (*directory.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.create"); err != nil {
		return nil, err
	}
	g := directory.Group{ID: f.newID(), GroupAttributes: attrs}
	f.groups[g.ID] = g
	f.members[g.ID] = map[string]bool{}
	f.Writes["group.create"]++
	return &g, nil
}

// UpdateGroup implements the Directory port.
func (f *Fake) UpdateGroup(_ context.Context, id string, attrs directory.GroupAttributes) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.update"); err != nil {
		return err
	}
	g, ok := f.groups[id]
	if !ok {
		return notFound("group.update", id)
	}
	g.DisplayName, g.Description = attrs.DisplayName, attrs.Description
	f.groups[id] = g
	f.Writes["group.update"]++
	return nil
}

// DeleteGroup implements the Directory port.
func (f *Fake) DeleteGroup(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("group.delete"); err != nil {
		return err
	}
	if _, ok := f.groups[id]; !ok {
		return notFound("group.delete", id)
	}
	delete(f.groups, id)
	delete(f.members, id)
	f.Writes["group.delete"]++
	return nil
}

// AddMember implements the Directory port.
func (f *Fake) AddMember(_ context.Context, groupID, memberID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("member.add"); err != nil {
		return err
	}
	members, ok := f.members[groupID]
	if !ok {
		return notFound("member.add", groupID)
	}
	if _, isUser := f.users[memberID]; !isUser {
		if _, isGroup := f.groups[memberID]; !isGroup {
			return notFound("member.add", memberID)
		}
	}
	if !members[memberID] {
		members[memberID] = true
		f.Writes["member.add"]++
	}
	return nil
}

// AddMembers implements the Directory port: all or nothing, as Graph's members@odata.bind.
func (f *Fake) AddMembers(_ context.Context, groupID string, memberIDs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("member.bind"); err != nil {
		return err
	}
	members, ok := f.members[groupID]
	if !ok {
		return notFound("member.bind", groupID)
	}
	for _, id := range memberIDs {
		_, isUser := f.users[id]
		_, isGroup := f.groups[id]
		if !isUser && !isGroup {
			return notFound("member.bind", id)
		}
		if members[id] {
			return &directory.Error{Op: "member.bind", Class: directory.ClassInvalid, Status: 400, Code: "Request_BadRequest",
				Message: "One or more added object references already exist for the following modified properties: 'members'."}
		}
	}
	for _, id := range memberIDs {
		members[id] = true
	}
	f.Writes["member.bind"]++
	return nil
}

// RemoveMembers implements the Directory port.
func (f *Fake) RemoveMembers(ctx context.Context, refs []directory.MemberRef) []error {
	errs := make([]error, len(refs))
	for i, ref := range refs {
		errs[i] = f.RemoveMember(ctx, ref.GroupID, ref.MemberID)
	}
	return errs
}

// SetManager implements the Directory port.
func (f *Fake) SetManager(_ context.Context, userID, managerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("manager.set"); err != nil {
		return err
	}
	if _, ok := f.users[userID]; !ok {
		return notFound("manager.set", userID)
	}
	if _, ok := f.users[managerID]; !ok {
		return notFound("manager.set", managerID)
	}
	f.manager[userID] = managerID
	f.Writes["manager.set"]++
	return nil
}

// RemoveManager implements the Directory port: a user without a manager is success, as in Graph's
// adapter.
func (f *Fake) RemoveManager(_ context.Context, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("manager.remove"); err != nil {
		return err
	}
	if _, ok := f.users[userID]; !ok {
		return notFound("manager.remove", userID)
	}
	if _, ok := f.manager[userID]; ok {
		delete(f.manager, userID)
		f.Writes["manager.remove"]++
	}
	return nil
}

// GetManager implements the Directory port.
func (f *Fake) GetManager(_ context.Context, userID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("manager.get"); err != nil {
		return "", err
	}
	if _, ok := f.users[userID]; !ok {
		return "", notFound("manager.get", userID)
	}
	return f.manager[userID], nil
}

// GetUserByPrincipalName implements the Directory port.
func (f *Fake) GetUserByPrincipalName(_ context.Context, principalName string) (*directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.get"); err != nil {
		return nil, err
	}
	for _, u := range f.users {
		if strings.EqualFold(u.UserPrincipalName, principalName) {
			return &u, nil
		}
	}
	return nil, nil
}

// RevokeSignInSessions implements the Directory port: the user's sessions are valid from now.
func (f *Fake) RevokeSignInSessions(_ context.Context, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.revoke-sessions"); err != nil {
		return err
	}
	u, ok := f.users[userID]
	if !ok {
		return notFound("user.revoke-sessions", userID)
	}
	now := time.Now()
	u.SignInSessionsValidFrom = &now
	f.users[userID] = u
	f.Writes["user.revoke-sessions"]++
	return nil
}

// Manager returns a user's manager id.
func (f *Fake) Manager(userID string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.manager[userID]
	return id, ok
}

// RemoveMember implements the Directory port.
func (f *Fake) RemoveMember(_ context.Context, groupID, memberID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("member.remove"); err != nil {
		return err
	}
	if f.members[groupID][memberID] {
		delete(f.members[groupID], memberID)
		f.Writes["member.remove"]++
	}
	return nil
}

// Members returns a group's member ids.
func (f *Fake) Members(groupID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.members[groupID] {
		ids = append(ids, id)
	}
	return ids
}

// applyMapped is stored's mapped properties after writing the named fields of attrs: as Graph
// reads them back, without empty values, nil when none is left.
func applyMapped(stored map[string]string, attrs directory.UserAttributes, fields []directory.Field) map[string]string {
	out := maps.Clone(stored)
	for _, field := range fields {
		name := string(field)
		if !directory.IsMapped(name) {
			continue
		}
		if value := attrs.Mapped[name]; value != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = value
		} else {
			delete(out, name)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkMapped applies the one rule of the mapped properties the contract checks: usageLocation
// is a two-letter country code (ISO 3166-1 alpha-2).
func checkMapped(op string, attrs directory.UserAttributes) error {
	if location, ok := attrs.Mapped["usageLocation"]; ok && location != "" && !isCountryCode(location) {
		return &directory.Error{Op: op, Class: directory.ClassInvalid, Status: 400, Code: "Request_BadRequest",
			Message: "Invalid value specified for property 'usageLocation' of resource 'User'.", Property: "usageLocation"}
	}
	return nil
}

func isCountryCode(s string) bool {
	return len(s) == 2 && strings.IndexFunc(s, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') }) < 0
}

// FakeMail is a message the Fake's SendMail accepted.
type FakeMail struct {
	Sender string
	directory.Mail
}

// CreateTemporaryAccessPass implements the Directory port: one pass per user, a new one replaces
// the previous; a lifetime outside 10 to 43200 minutes is refused as Graph refuses it.
func (f *Fake) CreateTemporaryAccessPass(_ context.Context, userID string, start time.Time, lifetimeMinutes int, usableOnce bool) (*directory.AccessPass, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.temporary-access-pass.create"); err != nil {
		return nil, err
	}
	if _, ok := f.users[userID]; !ok {
		return nil, notFound("user.temporary-access-pass.create", userID)
	}
	if lifetimeMinutes < 10 || lifetimeMinutes > 43200 {
		return nil, &directory.Error{Op: "user.temporary-access-pass.create", Class: directory.ClassInvalid, Status: 400, Code: "BadRequest",
			Message: "Invalid value specified for property 'lifetimeInMinutes'.", Property: "lifetimeInMinutes"}
	}
	id := f.newID()
	pass := directory.AccessPass{ID: id, Secret: directory.NewSecret("fake-pass-" + id), Start: start, LifetimeMinutes: lifetimeMinutes, IsUsableOnce: usableOnce}
	f.passes[userID] = pass
	f.Writes["user.temporary-access-pass.create"]++
	return &pass, nil
}

// DeleteTemporaryAccessPass implements the Directory port.
func (f *Fake) DeleteTemporaryAccessPass(_ context.Context, userID, passID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.temporary-access-pass.delete"); err != nil {
		return err
	}
	if pass, ok := f.passes[userID]; ok && pass.ID == passID {
		delete(f.passes, userID)
		f.Writes["user.temporary-access-pass.delete"]++
	}
	return nil
}

// SendMail implements the Directory port: the sender must be a user with a mail address, and
// the message must have a recipient.
func (f *Fake) SendMail(_ context.Context, senderID string, mail directory.Mail) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("mail.send"); err != nil {
		return err
	}
	sender, ok := f.users[senderID]
	if !ok {
		for _, u := range f.users {
			if strings.EqualFold(u.UserPrincipalName, senderID) {
				sender, ok = u, true
			}
		}
	}
	if !ok || sender.Mail == "" {
		return &directory.Error{Op: "mail.send", Class: directory.ClassInvalid, Status: 404, Code: "MailboxNotEnabledForRESTAPI",
			Message: "The mailbox is either inactive, soft-deleted, or is hosted on-premise."}
	}
	if len(mail.To) == 0 {
		return &directory.Error{Op: "mail.send", Class: directory.ClassInvalid, Status: 400, Code: "ErrorInvalidRecipients",
			Message: "At least one recipient is not valid., A message can't be sent because it contains no recipients."}
	}
	f.mail = append(f.mail, FakeMail{Sender: senderID, Mail: directory.Mail{To: slices.Clone(mail.To), Subject: mail.Subject, Body: mail.Body}})
	f.Writes["mail.send"]++
	return nil
}

// FakePassword is a password ResetPassword set: the value (the fake is a test's directory, it
// keeps what a test needs to compare), whether it must be changed at the next sign-in, and when.
type FakePassword struct {
	Secret                        directory.Secret
	ForceChangePasswordNextSignIn bool
	SetAt                         time.Time
}

// ResetPassword implements the Directory port: the user must exist, and the password must meet
// Entra ID's default policy (see ComplexPassword), as Graph refuses one that does not.
func (f *Fake) ResetPassword(_ context.Context, userID string, password directory.Secret) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("user.password.reset"); err != nil {
		return err
	}
	if _, ok := f.users[userID]; !ok {
		return notFound("user.password.reset", userID)
	}
	if !ComplexPassword(password.Reveal()) {
		return &directory.Error{Op: "user.password.reset", Class: directory.ClassInvalid, Status: 400, Code: directory.CodeRequestBadRequest,
			Message: "The specified password does not comply with password complexity requirements. Please provide a different password.", Property: "passwordProfile"}
	}
	f.resets[userID] = FakePassword{Secret: password, ForceChangePasswordNextSignIn: true, SetAt: time.Now()}
	f.Writes["user.password.reset"]++
	return nil
}

// ComplexPassword applies Entra ID's default password policy: 8 to 256 characters from at least
// three of lowercase letters, uppercase letters, digits and symbols.
func ComplexPassword(password string) bool {
	if n := len([]rune(password)); n < 8 || n > 256 {
		return false
	}
	var lower, upper, digit, symbol int
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			symbol = 1
		}
	}
	return lower+upper+digit+symbol >= 3
}

// PasswordReset returns the password ResetPassword last set for a user, if any.
func (f *Fake) PasswordReset(userID string) (FakePassword, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reset, ok := f.resets[userID]
	return reset, ok
}

// AccessPass returns a user's pass, if any.
func (f *Fake) AccessPass(userID string) (directory.AccessPass, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pass, ok := f.passes[userID]
	return pass, ok
}

// SentMail returns a copy of every message accepted.
func (f *Fake) SentMail() []FakeMail {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeMail, len(f.mail))
	for i, m := range f.mail {
		m.To = slices.Clone(m.To)
		out[i] = m
	}
	return out
}
