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
	// headers are extra response headers, such as Allow on a 405.
	headers http.Header
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

func invalidProperty(name string, kind objectKind) *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Invalid value specified for property '%s' of resource '%s'.", name, kind.resourceName())
}

func duplicateProperty(name string) *apiError {
	return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Another object with the same value for property %s already exists.", name)
}

// errorEnvelope is Graph's JSON error body.
type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError innerError `json:"innerError"`
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
