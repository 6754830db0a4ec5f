package emulator

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	metadataURL = "https://graph.microsoft.com/v1.0/$metadata#"
	// defaultPageSize and maxPageSize are Graph's for users, groups and members.
	defaultPageSize = 100
	maxPageSize     = 999
)

// defaultUserProperties are the properties Graph returns for a user when $select is absent.
var defaultUserProperties = []string{
	"businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
	"officeLocation", "preferredLanguage", "surname", "userPrincipalName",
}

// collectionQuery holds the query options of a collection request.
type collectionQuery struct {
	filter    *filterExpr
	selection []string // nil when $select is absent
	pageSize  int
	// afterSequence comes from $skiptoken: the page starts after the item with this sequence.
	afterSequence uint64
	count         bool
}

// parseCollectionQuery reads $filter, $select, $top, $skiptoken and $count. Other system query
// options are refused rather than ignored, so a client never silently gets an unfiltered or
// unordered answer.
func parseCollectionQuery(r *http.Request) (collectionQuery, error) {
	options, err := systemQueryOptions(r, "$filter", "$select", "$top", "$skiptoken", "$count")
	if err != nil {
		return collectionQuery{}, err
	}
	query := collectionQuery{pageSize: defaultPageSize}
	if raw, present := options["$filter"]; present {
		parsed, err := parseFilter(raw)
		if err != nil {
			return collectionQuery{}, newAPIError(http.StatusBadRequest, CodeUnsupportedQuery,
				"Unsupported or invalid filter clause: %v in '%s'. The emulator supports property eq literal clauses joined by and.", err, raw)
		}
		query.filter = &parsed
	}
	if raw, present := options["$select"]; present {
		query.selection = parseSelection(raw)
	}
	if raw, present := options["$top"]; present {
		pageSize, err := strconv.Atoi(raw)
		if err != nil || pageSize < 1 || pageSize > maxPageSize {
			return collectionQuery{}, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
				"Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", raw, maxPageSize)
		}
		query.pageSize = pageSize
	}
	if raw, present := options["$skiptoken"]; present {
		afterSequence, ok := decodeSkipToken(raw)
		if !ok {
			return collectionQuery{}, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
				"Invalid $skiptoken '%s'; use the @odata.nextLink of the previous page as it is.", raw)
		}
		query.afterSequence = afterSequence
	}
	if raw, present := options["$count"]; present {
		switch strings.ToLower(raw) {
		case "true":
			// Directory objects support $count only as an advanced query.
			if !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
				return collectionQuery{}, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
					"$count is not currently supported.")
			}
			query.count = true
		case "false":
		default:
			return collectionQuery{}, newAPIError(http.StatusBadRequest, CodeBadRequest,
				"Invalid value '%s' for query option $count; use true or false.", raw)
		}
	}
	return query, nil
}

// parseEntitySelection reads the only query option an entity request supports, $select.
func parseEntitySelection(r *http.Request) ([]string, error) {
	options, err := systemQueryOptions(r, "$select")
	if err != nil {
		return nil, err
	}
	raw, present := options["$select"]
	if !present {
		return nil, nil
	}
	return parseSelection(raw), nil
}

// systemQueryOptions returns the "$" query options of r, refusing any not in supported and any
// given twice. Options without "$" are not Graph's and are ignored.
func systemQueryOptions(r *http.Request, supported ...string) (map[string]string, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, CodeBadRequest, "The query string is malformed: %v.", err)
	}
	options := make(map[string]string)
	for name, given := range values {
		if !strings.HasPrefix(name, "$") {
			continue
		}
		canonical := strings.ToLower(name)
		if !containsString(supported, canonical) {
			return nil, newAPIError(http.StatusBadRequest, CodeUnsupportedQuery,
				"The query option '%s' is not supported by the emulator for this request.", name)
		}
		if len(given) > 1 {
			return nil, newAPIError(http.StatusBadRequest, CodeBadRequest,
				"Query option '%s' was specified more than once, but it must be specified at most once.", name)
		}
		options[canonical] = given[0]
	}
	return options, nil
}

func containsString(values []string, wanted string) bool {
	for _, value := range values {
		if value == wanted {
			return true
		}
	}
	return false
}

// parseSelection splits a $select list; an empty list selects nothing but id.
func parseSelection(raw string) []string {
	selection := []string{}
	for _, name := range strings.Split(raw, ",") {
		if name = strings.TrimSpace(name); name != "" {
			selection = append(selection, name)
		}
	}
	return selection
}

func encodeSkipToken(afterSequence uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("after:" + strconv.FormatUint(afterSequence, 10)))
}

func decodeSkipToken(token string) (uint64, bool) {
	decoded, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	digits, found := strings.CutPrefix(string(decoded), "after:")
	if !found {
		return 0, false
	}
	afterSequence, err := strconv.ParseUint(digits, 10, 64)
	return afterSequence, err == nil
}

// contextURL returns the @odata.context of a collection or, with entity set, of one entity.
func contextURL(entitySet string, selection []string, entity bool) string {
	context := metadataURL + entitySet
	if selection != nil {
		context += "(" + strings.Join(selection, ",") + ")"
	}
	if entity {
		context += "/$entity"
	}
	return context
}

// nextLink returns the URL of the page after afterSequence: the request URL with its
// $skiptoken replaced, on the scheme and host the client used.
func nextLink(r *http.Request, afterSequence uint64) string {
	values, _ := url.ParseQuery(r.URL.RawQuery) // already parsed successfully by systemQueryOptions
	for name := range values {
		if strings.EqualFold(name, "$skiptoken") {
			delete(values, name)
		}
	}
	values.Set("$skiptoken", encodeSkipToken(afterSequence))
	return linkTo(r, values)
}

// linkTo returns the URL of r's path with query, on the scheme and host the client used.
func linkTo(r *http.Request, query url.Values) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// "$" needs no escaping in a query; leaving it readable matches Graph's own links.
	encoded := strings.ReplaceAll(query.Encode(), "%24", "$")
	return scheme + "://" + r.Host + r.URL.EscapedPath() + "?" + encoded
}

// render returns a copy of object as a response item: the selected properties (null when
// unset) plus id, or without $select Graph's defaults for a user and everything for a group.
func (s *Server) render(object *directoryObject, selection []string, withType bool) Object {
	var rendered Object
	switch {
	case selection != nil:
		rendered = Object{"id": object.id()}
		for _, name := range selection {
			if object.kind == kindUser && strings.EqualFold(name, sessionsValidFrom) {
				rendered[sessionsValidFrom] = renderSessionsValidFrom(object)
				continue
			}
			if key, value, ok := s.renderLicenseProperty(object, name); ok {
				rendered[key] = value
				continue
			}
			key, found := lookupKey(object.props, name)
			if !found {
				rendered[name] = nil
				continue
			}
			rendered[key] = cloneJSONValue(object.props[key])
		}
	case object.kind == kindUser && !s.allUserProperties:
		rendered = make(Object, len(defaultUserProperties))
		for _, name := range defaultUserProperties {
			rendered[name] = cloneJSONValue(object.props[name])
		}
		if rendered["businessPhones"] == nil {
			rendered["businessPhones"] = []any{}
		}
	default:
		rendered = object.props.clone()
	}
	if withType {
		rendered["@odata.type"] = object.kind.odataType()
	}
	return rendered
}

// collectionItem is one candidate of a collection, with the sequence that pages it.
type collectionItem struct {
	sequence uint64
	object   *directoryObject
}

// collectionPage renders one page of items, which must be in ascending sequence order.
func (s *Server) collectionPage(r *http.Request, entitySet string, items []collectionItem, query collectionQuery, withType bool) Object {
	values := []any{}
	matched := 0
	hasMore := false
	var lastSequence uint64
	for _, item := range items {
		if query.filter != nil && !query.filter.matches(item.object.props) {
			continue
		}
		matched++
		if item.sequence <= query.afterSequence {
			continue
		}
		if len(values) == query.pageSize {
			hasMore = true
			if !query.count {
				break
			}
			continue
		}
		values = append(values, s.render(item.object, query.selection, withType))
		lastSequence = item.sequence
	}
	page := Object{"@odata.context": contextURL(entitySet, query.selection, false), "value": values}
	if query.count {
		page["@odata.count"] = matched
	}
	if hasMore {
		page["@odata.nextLink"] = nextLink(r, lastSequence)
	}
	return page
}
