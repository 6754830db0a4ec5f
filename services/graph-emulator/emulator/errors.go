package emulator

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes the emulator returns in the "code" field of Graph's error envelope. They are the
// codes Graph itself uses for the same situations.
const (
	// CodeBadRequest is Graph's code for a request it cannot parse: malformed JSON, an unknown
	// URL segment or an invalid query option.
	CodeBadRequest = "BadRequest"
	// CodeRequestBadRequest is the directory's code for a request that parses but is invalid:
	// a missing required property, a duplicate userPrincipalName or an existing member.
	CodeRequestBadRequest = "Request_BadRequest"
	// CodeResourceNotFound is the directory's code for an unknown object id.
	CodeResourceNotFound = "Request_ResourceNotFound"
	// CodeUnsupportedQuery is the directory's code for a query it does not support.
	CodeUnsupportedQuery = "Request_UnsupportedQuery"
	// CodeInternalServerError marks a bug in the emulator itself.
	CodeInternalServerError = "InternalServerError"
	// CodeInvalidAuthenticationToken is Graph's code for a rejected token (401).
	CodeInvalidAuthenticationToken = "InvalidAuthenticationToken"
	// CodeTooManyRequests is Graph's code for a throttled request (429).
	CodeTooManyRequests = "TooManyRequests"
	// CodeServiceUnavailable is Graph's code for a 503.
	CodeServiceUnavailable = "serviceNotAvailable"
	// CodeGeneralException is Graph's code for an unexpected server failure (500).
	CodeGeneralException = "generalException"
	// CodeSyncStateNotFound is the directory's code (with 400) for a delta token it no longer
	// knows; the client must start a new initial round.
	CodeSyncStateNotFound = "syncStateNotFound"
)

// apiError is an error the emulator answers with, carrying the HTTP status and Graph error code.
// Handlers return it; Server.writeError is the only place that turns it into a response.
type apiError struct {
	status  int
	code    string
	message string
	// details are Graph's "details" entries: which property the error is about, with its own
	// code (InvalidValue, ObjectConflict), where Graph gives them.
	details []errorDetail
	// headers are extra response headers, such as Allow on a 405.
	headers http.Header
}

// Detail codes Graph puts in an error's "details" entries.
const (
	// DetailInvalidValue marks the property whose value Graph refuses.
	DetailInvalidValue = "InvalidValue"
	// DetailObjectConflict marks the property another object already holds the value of.
	DetailObjectConflict = "ObjectConflict"
)

// errorDetail is one entry of Graph's "details": a code and the property (target) it is about.
type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Target  string `json:"target,omitempty"`
}

// about adds a details entry naming the property the error is about.
func (e *apiError) about(code, property string) *apiError {
	e.details = append(e.details, errorDetail{Code: code, Target: property})
	return e
}

// withHeader adds a response header, such as Retry-After on a 429.
func (e *apiError) withHeader(name, value string) *apiError {
	if e.headers == nil {
		e.headers = http.Header{}
	}
	e.headers.Set(name, value)
	return e
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// resourceNotFound is Graph's answer for an id that names no object, including an unknown
// object referenced from a request body.
func resourceNotFound(id string) *apiError {
	return newAPIError(http.StatusNotFound, CodeResourceNotFound,
		"Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

func malformedJSON() *apiError {
	return newAPIError(http.StatusBadRequest, CodeBadRequest,
		"Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
}

func requiredProperty(name string) *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Property %s value is required but is empty or missing.", name)
}

// invalidProperty is Graph's answer for a value it refuses, such as a mailNickname with a space
// or a jobTitle over its length.
func invalidProperty(name string, kind objectKind) *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Invalid value specified for property '%s' of resource '%s'.", name, kind.resourceName()).
		about(DetailInvalidValue, name)
}

// invalidPrincipalName is Graph's own wording for a userPrincipalName it refuses (characters,
// lengths, the "@").
func invalidPrincipalName() *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Property userPrincipalName is invalid.").about(DetailInvalidValue, "userPrincipalName")
}

// unverifiedDomain is Graph's answer for a userPrincipalName outside the tenant's verified domains.
func unverifiedDomain() *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.").
		about(DetailInvalidValue, "userPrincipalName")
}

// duplicateProperty is Graph's answer when another object holds a unique value.
func duplicateProperty(name string) *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Another object with the same value for property %s already exists.", name).
		about(DetailObjectConflict, name)
}

// errorEnvelope is Graph's JSON error body.
type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code       string        `json:"code"`
	Message    string        `json:"message"`
	Details    []errorDetail `json:"details,omitempty"`
	InnerError innerError    `json:"innerError"`
}

type innerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

// asAPIError returns err as an *apiError, turning anything else into a 500 so that a bug in the
// emulator still produces Graph's envelope.
func asAPIError(err error) *apiError {
	var answer *apiError
	if errors.As(err, &answer) {
		return answer
	}
	return newAPIError(http.StatusInternalServerError, CodeInternalServerError, "The emulator failed: %v", err)
}
