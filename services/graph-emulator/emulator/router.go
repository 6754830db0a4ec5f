package emulator

import (
	"net/http"
	"slices"
	"strings"
)

// route maps a method and a path under /v1.0 to a handler. A pattern segment "{name}" captures
// one path segment; other segments match literally, ignoring case as Graph does.
type route struct {
	method    string
	pattern   []string
	operation string
	handle    func(*call) error
}

func newRoute(method, pattern, operation string, handle func(*call) error) route {
	return route{method: method, pattern: strings.Split(pattern, "/"), operation: operation, handle: handle}
}

type routeMatch struct {
	route  *route
	params map[string]string
}

// matchRoute finds the route for method and segments. Without one it answers like Graph:
// 405 when the path exists with another method, otherwise 400 naming the first segment that
// no route knows.
func matchRoute(routes []route, method string, segments []string) (routeMatch, error) {
	var allowed []string
	deepestMatch := 0
	for i := range routes {
		candidate := &routes[i]
		matchedSegments := leadingMatch(candidate.pattern, segments)
		deepestMatch = max(deepestMatch, matchedSegments)
		if matchedSegments != len(segments) || len(candidate.pattern) != len(segments) {
			continue
		}
		if candidate.method != method {
			allowed = append(allowed, candidate.method)
			continue
		}
		return routeMatch{route: candidate, params: captureParams(candidate.pattern, segments)}, nil
	}
	if len(allowed) > 0 {
		return routeMatch{}, methodNotAllowed(allowed)
	}
	unknown := "v1.0"
	switch {
	case deepestMatch < len(segments):
		unknown = segments[deepestMatch]
	case len(segments) > 0:
		unknown = segments[len(segments)-1]
	}
	return routeMatch{}, newAPIError(http.StatusBadRequest, CodeBadRequest, "Resource not found for the segment '%s'.", unknown)
}

// leadingMatch counts how many leading segments pattern matches.
func leadingMatch(pattern, segments []string) int {
	matched := 0
	for matched < len(pattern) && matched < len(segments) {
		if !isParam(pattern[matched]) && !strings.EqualFold(pattern[matched], segments[matched]) {
			break
		}
		matched++
	}
	return matched
}

func captureParams(pattern, segments []string) map[string]string {
	params := make(map[string]string)
	for i, part := range pattern {
		if isParam(part) {
			params[strings.Trim(part, "{}")] = segments[i]
		}
	}
	return params
}

func isParam(part string) bool {
	return strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}")
}

// methodNotAllowed is Graph's 405, with an Allow header listing the methods the path accepts.
func methodNotAllowed(allowed []string) *apiError {
	methods := slices.Clone(allowed)
	slices.Sort(methods)
	answer := newAPIError(http.StatusMethodNotAllowed, CodeRequestBadRequest, "Specified HTTP method is not allowed for the request target.")
	answer.headers = http.Header{"Allow": {strings.Join(slices.Compact(methods), ", ")}}
	return answer
}
