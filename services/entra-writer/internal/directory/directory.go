// Package directory holds entra-writer's vocabulary for Entra ID objects — users and groups as
// attribute sets, and directory errors classified by HTTP status and error code — shared by the
// writer and the Graph adapter, so that only the adapter depends on the Graph SDK.
package directory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// User is a user as the writer manages it.
type User struct {
	// ID is the Entra object id; empty for a user not yet created.
	ID string
	UserAttributes
	// SignInSessionsValidFrom is Graph's signInSessionsValidFromDateTime, when the directory
	// says: sign-in sessions (refresh tokens, session cookies) issued before it are invalid.
	// Graph sets it when the account is created, when its password changes and when its
	// sessions are revoked; orgsync never writes it but through RevokeSignInSessions.
	SignInSessionsValidFrom *time.Time
}

// UserAttributes are the user properties orgsync manages, by their Graph meaning.
type UserAttributes struct {
	AccountEnabled        bool
	DisplayName           string
	GivenName             string
	Surname               string
	UserPrincipalName     string
	MailNickname          string
	Mail                  string
	JobTitle              string
	Department            string
	CompanyName           string
	OfficeLocation        string
	EmployeeID            string
	EmployeeType          string
	EmployeeHireDate      *time.Time
	EmployeeLeaveDateTime *time.Time
	CostCenter            string
	Division              string
	BusinessPhones        []string
	// Mapped are the further properties a policy maps (MappedProperties), by Graph name: a
	// property is managed only when the desired user names it, and an empty value clears it.
	// extensionAttribute1 to 15 are those of onPremisesExtensionAttributes. A user read from the
	// directory has every mapped property that holds a value.
	Mapped map[string]string
}

// Values renders the attributes by Graph property name, for audit records.
func (a UserAttributes) Values() map[string]string {
	values := map[string]string{
		string(FieldAccountEnabled): fmt.Sprint(a.AccountEnabled), string(FieldDisplayName): a.DisplayName,
		string(FieldGivenName): a.GivenName, string(FieldSurname): a.Surname,
		string(FieldUserPrincipalName): a.UserPrincipalName, string(FieldMailNickname): a.MailNickname,
		string(FieldMail): a.Mail, string(FieldJobTitle): a.JobTitle, string(FieldDepartment): a.Department,
		string(FieldCompanyName): a.CompanyName, string(FieldOfficeLocation): a.OfficeLocation,
		string(FieldEmployeeID): a.EmployeeID, string(FieldEmployeeType): a.EmployeeType,
		"employeeOrgData/costCenter": a.CostCenter, "employeeOrgData/division": a.Division,
		string(FieldBusinessPhones): strings.Join(a.BusinessPhones, ", "),
	}
	for name, value := range a.Mapped {
		values[name] = value
	}
	if a.EmployeeHireDate != nil {
		values[string(FieldEmployeeHireDate)] = a.EmployeeHireDate.UTC().Format(time.RFC3339)
	}
	if a.EmployeeLeaveDateTime != nil {
		values[string(FieldEmployeeLeaveDateTime)] = a.EmployeeLeaveDateTime.UTC().Format(time.RFC3339)
	}
	return values
}

// Field names a managed user property by its Graph name.
type Field string

// The managed user properties.
const (
	FieldAccountEnabled        Field = "accountEnabled"
	FieldDisplayName           Field = "displayName"
	FieldGivenName             Field = "givenName"
	FieldSurname               Field = "surname"
	FieldUserPrincipalName     Field = "userPrincipalName"
	FieldMailNickname          Field = "mailNickname"
	FieldMail                  Field = "mail"
	FieldJobTitle              Field = "jobTitle"
	FieldDepartment            Field = "department"
	FieldCompanyName           Field = "companyName"
	FieldOfficeLocation        Field = "officeLocation"
	FieldEmployeeID            Field = "employeeId"
	FieldEmployeeType          Field = "employeeType"
	FieldEmployeeHireDate      Field = "employeeHireDate"
	FieldEmployeeLeaveDateTime Field = "employeeLeaveDateTime"
	FieldEmployeeOrgData       Field = "employeeOrgData"
	FieldBusinessPhones        Field = "businessPhones"
	// FieldOnPremisesExtensionAttributes is read (in $select) for extensionAttribute1 to 15; it
	// is written one attribute at a time, as Field("extensionAttributeN").
	FieldOnPremisesExtensionAttributes Field = "onPremisesExtensionAttributes"
)

// MappedProperties are the string properties of a user that orgsync writes only when the policy
// maps them (UserAttributes.Mapped), by Graph name.
var MappedProperties = []string{
	"usageLocation", "city", "country", "state", "streetAddress", "postalCode", "mobilePhone",
	"preferredLanguage",
	"extensionAttribute1", "extensionAttribute2", "extensionAttribute3", "extensionAttribute4",
	"extensionAttribute5", "extensionAttribute6", "extensionAttribute7", "extensionAttribute8",
	"extensionAttribute9", "extensionAttribute10", "extensionAttribute11", "extensionAttribute12",
	"extensionAttribute13", "extensionAttribute14", "extensionAttribute15",
}

// IsMapped says whether name is one of MappedProperties.
func IsMapped(name string) bool { return slices.Contains(MappedProperties, name) }

// IsExtensionAttribute says whether a field is one of onPremisesExtensionAttributes' fifteen.
func IsExtensionAttribute(field Field) bool {
	return strings.HasPrefix(string(field), "extensionAttribute") && IsMapped(string(field))
}

// MappedFields are the fields of the mapped properties attrs names, in MappedProperties' order.
func (a UserAttributes) MappedFields() []Field {
	var fields []Field
	for _, name := range MappedProperties {
		if _, ok := a.Mapped[name]; ok {
			fields = append(fields, Field(name))
		}
	}
	return fields
}

// UserFields lists every managed user property, the $select of a user read.
var UserFields = []Field{
	FieldAccountEnabled, FieldDisplayName, FieldGivenName, FieldSurname, FieldUserPrincipalName,
	FieldMailNickname, FieldMail, FieldJobTitle, FieldDepartment, FieldCompanyName, FieldOfficeLocation,
	FieldEmployeeID, FieldEmployeeType, FieldEmployeeHireDate, FieldEmployeeLeaveDateTime,
	FieldEmployeeOrgData, FieldBusinessPhones,
	"usageLocation", "city", "country", "state", "streetAddress", "postalCode", "mobilePhone",
	"preferredLanguage", FieldOnPremisesExtensionAttributes,
}

// UserChanges lists the properties whose desired value differs from the current one.
func UserChanges(current, desired UserAttributes) []Field {
	var changed []Field
	add := func(field Field, differs bool) {
		if differs {
			changed = append(changed, field)
		}
	}
	add(FieldAccountEnabled, current.AccountEnabled != desired.AccountEnabled)
	add(FieldDisplayName, current.DisplayName != desired.DisplayName)
	add(FieldGivenName, current.GivenName != desired.GivenName)
	add(FieldSurname, current.Surname != desired.Surname)
	add(FieldUserPrincipalName, !strings.EqualFold(current.UserPrincipalName, desired.UserPrincipalName))
	add(FieldMailNickname, current.MailNickname != desired.MailNickname)
	add(FieldMail, !strings.EqualFold(current.Mail, desired.Mail))
	add(FieldJobTitle, current.JobTitle != desired.JobTitle)
	add(FieldDepartment, current.Department != desired.Department)
	add(FieldCompanyName, current.CompanyName != desired.CompanyName)
	add(FieldOfficeLocation, current.OfficeLocation != desired.OfficeLocation)
	add(FieldEmployeeID, current.EmployeeID != desired.EmployeeID)
	add(FieldEmployeeType, current.EmployeeType != desired.EmployeeType)
	add(FieldEmployeeHireDate, !equalTime(current.EmployeeHireDate, desired.EmployeeHireDate))
	add(FieldEmployeeLeaveDateTime, !equalTime(current.EmployeeLeaveDateTime, desired.EmployeeLeaveDateTime))
	add(FieldEmployeeOrgData, current.CostCenter != desired.CostCenter || current.Division != desired.Division)
	add(FieldBusinessPhones, !slices.Equal(current.BusinessPhones, desired.BusinessPhones))
	// Only what the policy maps is compared: a property it does not map is someone else's.
	for _, field := range desired.MappedFields() {
		add(field, current.Mapped[string(field)] != desired.Mapped[string(field)])
	}
	return changed
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// MemberRef names one membership: a member of a group, by object ids.
type MemberRef struct {
	GroupID  string
	MemberID string
}

// Group is a security group as the writer manages it.
type Group struct {
	ID string
	GroupAttributes
	// Licenses are the licences the group gives its members (Graph's assignedLicenses), as read.
	Licenses []License
}

// License is one licence a group gives its members: a subscribed SKU, less some of its plans.
type License struct {
	// SkuID and DisabledPlans are GUIDs in Graph's lowercase form.
	SkuID         string
	DisabledPlans []string
}

// LicenseError is one member whose licence from a group is in error (Graph's
// licenseAssignmentState with state Error).
type LicenseError struct {
	UserID string
	SkuID  string
	// Error is Graph's code: CountViolation, MutuallyExclusiveViolation, DependencyViolation,
	// ProhibitedInUsageLocationViolation, UniquenessViolation or Other.
	Error string
}

// LicenseChanges compares a group's licences with the desired ones and returns what
// assignLicense must add (new SKUs, and SKUs whose disabled plans differ) and remove.
func LicenseChanges(current, desired []License) (add []License, remove []string) {
	have := map[string][]string{}
	for _, license := range current {
		have[strings.ToLower(license.SkuID)] = sortedLower(license.DisabledPlans)
	}
	want := map[string]bool{}
	for _, license := range desired {
		sku := strings.ToLower(license.SkuID)
		want[sku] = true
		plans, assigned := have[sku]
		if !assigned || !slices.Equal(plans, sortedLower(license.DisabledPlans)) {
			add = append(add, License{SkuID: sku, DisabledPlans: sortedLower(license.DisabledPlans)})
		}
	}
	for _, license := range current {
		if sku := strings.ToLower(license.SkuID); !want[sku] {
			remove = append(remove, sku)
		}
	}
	return add, remove
}

func sortedLower(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.ToLower(id)
	}
	slices.Sort(out)
	return out
}

// GroupAttributes are the group properties orgsync manages. Groups are always created
// security-enabled and not mail-enabled.
type GroupAttributes struct {
	DisplayName  string
	Description  string
	MailNickname string
}

// Class says what kind of failure a directory error is, and so what to do about it.
type Class int

// Error classes.
const (
	ClassUnknown Class = iota
	// ClassThrottled: slow down and retry after the advised delay.
	ClassThrottled
	// ClassTransient: retry with backoff.
	ClassTransient
	// ClassNotFound: the object does not exist (or does not yet, after replication lag).
	ClassNotFound
	// ClassConflict: the request collides with existing state (e.g. a taken userPrincipalName).
	ClassConflict
	// ClassInvalid: the request can never succeed as it is.
	ClassInvalid
	// ClassForbidden: orgsync lacks the permission or the credentials are rejected.
	ClassForbidden
)

func (c Class) String() string {
	switch c {
	case ClassThrottled:
		return "throttled"
	case ClassTransient:
		return "transient"
	case ClassNotFound:
		return "not found"
	case ClassConflict:
		return "conflict"
	case ClassInvalid:
		return "invalid"
	case ClassForbidden:
		return "forbidden"
	default:
		return "unknown"
	}
}

// Error is a failed directory request.
type Error struct {
	// Op names the operation, e.g. "user.create".
	Op     string
	Class  Class
	Status int
	// Code is the directory's own error code, e.g. "Request_ResourceNotFound".
	Code    string
	Message string
	// Property is the property an invalid value or a conflict is about (e.g.
	// "userPrincipalName"), when the directory says which.
	Property string
	// RetryAfter is the delay the directory advised, if any.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Property != "" {
		return fmt.Sprintf("%s: %s (HTTP %d %s, property %s): %s", e.Op, e.Class, e.Status, e.Code, e.Property, e.Message)
	}
	return fmt.Sprintf("%s: %s (HTTP %d %s): %s", e.Op, e.Class, e.Status, e.Code, e.Message)
}

// Graph's codes in an error's "details" entries, whose target names the property.
const (
	// DetailObjectConflict: another object holds the value of a unique property.
	DetailObjectConflict = "ObjectConflict"
	// DetailInvalidValue: the property's value is refused.
	DetailInvalidValue = "InvalidValue"
)

// CodeRequestBadRequest is the directory's code for a request that parses but is refused.
const CodeRequestBadRequest = "Request_BadRequest"

// RefineBadRequest sets the class and property of a 400 from Graph's details: an ObjectConflict
// detail makes it a conflict, an InvalidValue detail an invalid value, each about the detail's
// target. When Graph gives only Request_BadRequest and a message, the property is read from the
// message by PropertyFromMessage, the one place that reads Graph's message text.
func (e *Error) RefineBadRequest(detailCode, target string) {
	if e.Status != 400 {
		return
	}
	switch detailCode {
	case DetailObjectConflict:
		e.Class, e.Property = ClassConflict, target
		return
	case DetailInvalidValue:
		e.Class, e.Property = ClassInvalid, target
		return
	}
	if e.Code != CodeRequestBadRequest || e.Property != "" {
		return
	}
	if property, conflict := PropertyFromMessage(e.Message); property != "" {
		e.Property = property
		if conflict {
			e.Class = ClassConflict
		}
	}
}

// PropertyFromMessage reads the property a Request_BadRequest message is about, for answers
// that carry no details, from Graph's documented message formats:
//
//	Property userPrincipalName is invalid.
//	Invalid value specified for property 'mailNickname' of resource 'User'.
//	Property displayName value is required but is empty or missing.
//	Another object with the same value for property userPrincipalName already exists.
//	The domain portion of the userPrincipalName property is invalid. ...
//
// conflict is true for the last-but-one, where another object holds the value. It returns "" for
// any other message.
func PropertyFromMessage(message string) (property string, conflict bool) {
	word := func(s string) string {
		if end := strings.IndexAny(s, " '."); end >= 0 {
			s = s[:end]
		}
		return s
	}
	switch {
	case strings.HasPrefix(message, "Another object with the same value for property "):
		return word(strings.TrimPrefix(message, "Another object with the same value for property ")), true
	case strings.HasPrefix(message, "Invalid value specified for property '"):
		return word(strings.TrimPrefix(message, "Invalid value specified for property '")), false
	case strings.HasPrefix(message, "The domain portion of the userPrincipalName property"):
		return "userPrincipalName", false
	case strings.HasPrefix(message, "Property "):
		rest := strings.TrimPrefix(message, "Property ")
		name := word(rest)
		if after := strings.TrimPrefix(rest, name); after == " is invalid." || strings.HasPrefix(after, " value is required") {
			return name, false
		}
	}
	return "", false
}

// ClassOf returns the class of err, ClassUnknown if it is not a directory error.
func ClassOf(err error) Class {
	var dirErr *Error
	if errors.As(err, &dirErr) {
		return dirErr.Class
	}
	return ClassUnknown
}

// Classify decides an error's class from the HTTP status alone; callers refine it with the code
// where Graph reuses a status.
func Classify(status int) Class {
	switch {
	case status == 429:
		return ClassThrottled
	case status == 401 || status == 403:
		return ClassForbidden
	case status == 404:
		return ClassNotFound
	case status == 409 || status == 412:
		return ClassConflict
	case status >= 500 || status == 408:
		return ClassTransient
	case status >= 400:
		return ClassInvalid
	default:
		return ClassUnknown
	}
}
