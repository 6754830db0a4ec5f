package emulator

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Delta queries (GET /users/delta and /groups/delta) let a client read the directory once and
// then only what changed. A round is the pages between one request without a $skiptoken and
// the page that carries "@odata.deltaLink". Its snapshot is the directory's sequence when its
// first page was asked for; the round reports changes up to the snapshot and the deltaLink
// reports those after it, so a change made while a client pages through a round is reported in
// the next round instead of being lost. A round is ordered by creation, which no change can
// move, so no object is returned twice in one round.

// deltaFunctionNames are the spellings of the delta function in a path: Graph's documentation
// writes "delta", msgraph-sdk-go requests "delta()", and Graph accepts the qualified name.
var deltaFunctionNames = []string{"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"}

// deltaRoutes returns the routes of users/delta and groups/delta in every spelling.
func (s *Server) deltaRoutes() []route {
	var routes []route
	for _, name := range deltaFunctionNames {
		routes = append(routes,
			newRoute(http.MethodGet, "users/"+name, OpUsersDelta, func(c *call) error { return s.delta(c, kindUser) }),
			newRoute(http.MethodGet, "groups/"+name, OpGroupsDelta, func(c *call) error { return s.delta(c, kindGroup) }))
	}
	return routes
}

// deltaRound is the state of a delta round, carried from page to page in $skiptoken and from
// round to round in $deltatoken as base64url-encoded JSON, so that clients treat it as opaque.
type deltaRound struct {
	// Epoch is the issuing directory's; see directory.epoch.
	Epoch string `json:"e"`
	// EntitySet is "users" or "groups"; a token is valid only for its own delta function.
	EntitySet string `json:"k"`
	// Page marks a $skiptoken, which continues a round, rather than a $deltatoken.
	Page bool `json:"p,omitempty"`
	// Initial marks the first round, which returns every object rather than changes.
	Initial bool `json:"i,omitempty"`
	// Since and Snapshot bound the changes the round reports: after Since, up to Snapshot.
	Since    uint64 `json:"t"`
	Snapshot uint64 `json:"s,omitempty"`
	// After is the creation sequence of the last object a page returned.
	After uint64 `json:"a,omitempty"`
	// Selection is the round's $select, nil without one.
	Selection []string `json:"sel"`
}

// covers reports whether the change with sequence belongs to the round.
func (r deltaRound) covers(sequence uint64) bool {
	return r.Since < sequence && sequence <= r.Snapshot
}

func (r deltaRound) encode() string {
	encoded, _ := json.Marshal(r) // a struct of strings, bools, numbers and a []string cannot fail
	return base64.RawURLEncoding.EncodeToString(encoded)
}

// tracksMembers reports whether the round reports group membership in "members@delta": Graph
// does so when $select names members or is absent.
func (r deltaRound) tracksMembers() bool {
	if r.EntitySet != kindGroup.entitySet() {
		return false
	}
	return r.Selection == nil || slices.ContainsFunc(r.Selection, isMembers)
}

// tracksManager reports whether the round reports a user's manager link in "manager@delta":
// Graph does so only when $select names manager.
func (r deltaRound) tracksManager() bool {
	return r.EntitySet == kindUser.entitySet() && slices.ContainsFunc(r.Selection, isManager)
}

// propertySelection is the $select that applies to the objects' own properties: members and
// manager are relationships, reported in "members@delta" and "manager@delta" rather than as
// properties.
func (r deltaRound) propertySelection() []string {
	switch {
	case r.Selection == nil:
		return nil
	case r.EntitySet == kindGroup.entitySet():
		return slices.DeleteFunc(slices.Clone(r.Selection), isMembers)
	default:
		return slices.DeleteFunc(slices.Clone(r.Selection), isManager)
	}
}

func isMembers(name string) bool { return strings.EqualFold(name, "members") }
func isManager(name string) bool { return strings.EqualFold(name, "manager") }

// delta handles GET /users/delta and /groups/delta.
func (s *Server) delta(c *call, kind objectKind) error {
	options, err := systemQueryOptions(c.request, "$select", "$skiptoken", "$deltatoken")
	if err != nil {
		return err
	}
	pageSize, preferred := preferredPageSize(c.request)

	s.mu.Lock()
	round, latest, err := s.directory.startDeltaPage(kind, options)
	var page Object
	if err == nil {
		page = s.deltaPage(c.request, round, latest, pageSize)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if preferred {
		c.writer.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(pageSize))
	}
	return s.writeJSON(c, http.StatusOK, page)
}

// startDeltaPage returns the round a delta request continues or starts. latest reports
// "$deltatoken=latest", which asks for a deltaLink at the current state and no objects.
func (d *directory) startDeltaPage(kind objectKind, options map[string]string) (round deltaRound, latest bool, err error) {
	skipToken, skipping := options["$skiptoken"]
	deltaToken, resuming := options["$deltatoken"]
	rawSelection, selecting := options["$select"]
	var selection []string
	if selecting {
		selection = parseSelection(rawSelection)
	}
	switch {
	case skipping && resuming:
		return deltaRound{}, false, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
			"A delta request takes $skiptoken or $deltatoken, not both.")
	case resuming && strings.EqualFold(deltaToken, "latest"):
		return deltaRound{Epoch: d.epoch, EntitySet: kind.entitySet(), Since: d.lastSequence, Snapshot: d.lastSequence, Selection: selection}, true, nil
	case (skipping || resuming) && selecting:
		// The token carries the $select of the round's first request; honouring a second one
		// would silently change what the client tracks.
		return deltaRound{}, false, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
			"$select cannot be combined with a $skiptoken or $deltatoken, which carries the $select of the first request; use @odata.nextLink and @odata.deltaLink as they are.")
	case skipping:
		round, err := d.decodeDeltaToken(kind, skipToken, true)
		return round, false, err
	case resuming:
		round, err := d.decodeDeltaToken(kind, deltaToken, false)
		round.Initial, round.Snapshot = false, d.lastSequence
		return round, false, err
	default:
		return deltaRound{Epoch: d.epoch, EntitySet: kind.entitySet(), Initial: true, Snapshot: d.lastSequence, Selection: selection}, false, nil
	}
}

// decodeDeltaToken reads a $skiptoken (page) or $deltatoken issued for kind's delta function.
func (d *directory) decodeDeltaToken(kind objectKind, token string, page bool) (deltaRound, error) {
	option, link := "$deltatoken", "@odata.deltaLink of the previous round"
	if page {
		option, link = "$skiptoken", "@odata.nextLink of the previous page"
	}
	invalid := newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
		"Invalid %s '%s': it is not a token the emulator issued for %s/delta; use the %s as it is.",
		option, token, kind.entitySet(), link)
	decoded, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return deltaRound{}, invalid
	}
	decoder := json.NewDecoder(bytes.NewReader(decoded))
	decoder.DisallowUnknownFields()
	var round deltaRound
	if err := decoder.Decode(&round); err != nil {
		return deltaRound{}, invalid
	}
	if round.Epoch == "" || round.EntitySet != kind.entitySet() || round.Page != page ||
		(page && (round.Snapshot < round.Since || round.After > round.Snapshot)) {
		return deltaRound{}, invalid
	}
	if round.Epoch != d.epoch || round.Since > d.lastSequence || round.Snapshot > d.lastSequence {
		// A token of another emulator, such as this one before a restart: Graph's answer to a
		// token whose sync state it has lost.
		return deltaRound{}, newAPIError(http.StatusBadRequest, CodeSyncStateNotFound,
			"The sync state generation is not found. The delta token is expired and data must be synchronized again.")
	}
	return round, nil
}

// preferredPageSize reads the "Prefer: odata.maxpagesize=N" header. Like Graph, the emulator
// caps N at its maximum page size and ignores a preference it cannot read; it reports whether
// it applied one.
func preferredPageSize(r *http.Request) (int, bool) {
	for _, header := range r.Header.Values("Prefer") {
		for _, preference := range strings.Split(header, ",") {
			preference, _, _ = strings.Cut(preference, ";") // preference parameters do not matter here
			name, value, found := strings.Cut(preference, "=")
			if !found || !strings.EqualFold(strings.TrimSpace(name), "odata.maxpagesize") {
				continue
			}
			size, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
			if err != nil || size < 1 {
				continue
			}
			return min(size, maxPageSize), true
		}
	}
	return defaultPageSize, false
}

// deltaCandidate is an object a delta page may return: a live object, or the id of a removed
// one with the reason Graph gives.
type deltaCandidate struct {
	created uint64
	object  *directoryObject
	id      string
	removed string
}

// Reasons of "@removed": "changed" for an object that can still be restored, "deleted" for one
// that is gone for good.
const (
	removedChanged = "changed"
	removedDeleted = "deleted"
)

// deltaPage renders the next page of round.
func (s *Server) deltaPage(r *http.Request, round deltaRound, latest bool, pageSize int) Object {
	var candidates []deltaCandidate
	if !latest {
		candidates = s.directory.deltaCandidates(round)
	}
	slices.SortFunc(candidates, func(a, b deltaCandidate) int { return cmp.Compare(a.created, b.created) })
	hasMore := len(candidates) > pageSize
	if hasMore {
		candidates = candidates[:pageSize]
	}
	values := make([]any, 0, len(candidates))
	for _, candidate := range candidates {
		values = append(values, s.renderDelta(candidate, round))
	}
	page := Object{"@odata.context": contextURL(round.EntitySet, round.Selection, false), "value": values}
	if hasMore {
		next := round
		next.Page = true
		next.After = candidates[len(candidates)-1].created
		page["@odata.nextLink"] = linkTo(r, url.Values{"$skiptoken": {next.encode()}})
		return page
	}
	// The next round reports what changed after this round's snapshot.
	next := deltaRound{Epoch: round.Epoch, EntitySet: round.EntitySet, Since: round.Snapshot, Selection: round.Selection}
	page["@odata.deltaLink"] = linkTo(r, url.Values{"$deltatoken": {next.encode()}})
	return page
}

// deltaCandidates returns, in no particular order, every object of the round not yet returned.
func (d *directory) deltaCandidates(round deltaRound) []deltaCandidate {
	kind := kindUser
	if round.EntitySet == kindGroup.entitySet() {
		kind = kindGroup
	}
	var candidates []deltaCandidate
	for _, object := range d.ofKind(kind) {
		if object.sequence <= round.After {
			continue
		}
		// The initial round returns every object that existed at its snapshot, as it is now.
		include := object.sequence <= round.Snapshot
		if !round.Initial {
			include = round.covers(object.changed) || (round.tracksMembers() && hasMemberChange(object, round)) ||
				(round.tracksManager() && round.covers(object.managerChanged))
		}
		if include {
			candidates = append(candidates, deltaCandidate{created: object.sequence, object: object, id: object.id()})
		}
	}
	if round.Initial {
		// Objects removed before the client has seen them are not news to it.
		return candidates
	}
	if kind == kindUser {
		for _, user := range d.deletedUsers {
			if user.sequence > round.After && round.covers(user.changed) {
				candidates = append(candidates, deltaCandidate{created: user.sequence, id: user.id(), removed: removedChanged})
			}
		}
	}
	// Tombstones are in deletion order, so the round's start can be searched for.
	first, _ := slices.BinarySearchFunc(d.tombstones, round.Since+1, func(dead tombstone, sequence uint64) int {
		return cmp.Compare(dead.sequence, sequence)
	})
	for _, dead := range d.tombstones[first:] {
		if dead.sequence > round.Snapshot {
			break
		}
		if dead.kind == kind && dead.created > round.After {
			candidates = append(candidates, deltaCandidate{created: dead.created, id: dead.id, removed: removedDeleted})
		}
	}
	return candidates
}

// hasMemberChange reports whether group gained or lost a member within the round.
func hasMemberChange(group *directoryObject, round deltaRound) bool {
	if group.membersChanged <= round.Since {
		return false
	}
	for _, member := range group.members {
		if round.covers(member.sequence) {
			return true
		}
	}
	for _, removal := range group.removedMembers {
		if round.covers(removal.sequence) {
			return true
		}
	}
	return false
}

// renderDelta returns one item of a delta page.
func (s *Server) renderDelta(candidate deltaCandidate, round deltaRound) Object {
	if candidate.removed != "" {
		return Object{"id": candidate.id, "@removed": map[string]any{"reason": candidate.removed}}
	}
	rendered := s.render(candidate.object, round.propertySelection(), false)
	if round.tracksManager() {
		if manager := s.directory.managerDelta(candidate.object, round); manager != nil {
			rendered["manager@delta"] = manager
		}
	}
	if !round.tracksMembers() {
		return rendered
	}
	members := memberDelta(candidate.object, round)
	// The initial round lists every member, even none; a later one only a group's changes.
	if round.Initial || len(members) > 0 {
		rendered["members@delta"] = members
	}
	return rendered
}

// managerDelta returns a user's "manager@delta", nil when the round has nothing to say of it: the
// manager in the initial round (nothing when there is none), and in a later one the manager set
// within the round, or the one removed, marked "@removed".
func (d *directory) managerDelta(user *directoryObject, round deltaRound) []any {
	if !round.Initial && !round.covers(user.managerChanged) {
		return nil
	}
	if managerID, set := d.managers[user.id()]; set {
		return []any{map[string]any{"@odata.type": kindUser.odataType(), "id": managerID}}
	}
	if round.Initial || user.formerManager == "" {
		return nil
	}
	return []any{map[string]any{"@odata.type": kindUser.odataType(), "id": user.formerManager, "@removed": map[string]any{"reason": removedDeleted}}}
}

// memberDelta returns a group's "members@delta": every member at the snapshot in the initial
// round, otherwise the members added and removed within the round, in the order of the changes.
func memberDelta(group *directoryObject, round deltaRound) []any {
	type memberChange struct {
		sequence uint64
		memberID string
		kind     objectKind
		removed  bool
	}
	var changes []memberChange
	for _, member := range group.members {
		if (round.Initial && member.sequence <= round.Snapshot) || (!round.Initial && round.covers(member.sequence)) {
			changes = append(changes, memberChange{sequence: member.sequence, memberID: member.memberID, kind: member.kind})
		}
	}
	if !round.Initial {
		for memberID, removal := range group.removedMembers {
			if round.covers(removal.sequence) {
				changes = append(changes, memberChange{sequence: removal.sequence, memberID: memberID, kind: removal.kind, removed: true})
			}
		}
	}
	slices.SortFunc(changes, func(a, b memberChange) int { return cmp.Compare(a.sequence, b.sequence) })
	entries := make([]any, 0, len(changes))
	for _, change := range changes {
		entry := map[string]any{"@odata.type": change.kind.odataType(), "id": change.memberID}
		if change.removed {
			entry["@removed"] = map[string]any{"reason": removedDeleted}
		}
		entries = append(entries, entry)
	}
	return entries
}
