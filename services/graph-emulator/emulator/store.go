package emulator

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Object is a directory object as the emulator stores it: the JSON properties a client sent,
// decoded with encoding/json (strings, float64 numbers, bools, nil, []any and map[string]any),
// plus "id". Passwords and "@odata.*" annotations are never stored. The inspection methods of
// Server return deep copies, so a test may modify an Object freely.
type Object map[string]any

// ID returns the object's id, or "" if it has none.
func (o Object) ID() string {
	id, _ := o["id"].(string)
	return id
}

// String returns the named top-level string property, or "" if it is absent or not a string.
func (o Object) String(name string) string {
	value, _ := o[name].(string)
	return value
}

func (o Object) clone() Object {
	if o == nil {
		return nil
	}
	return Object(cloneJSONObject(o))
}

func cloneJSONObject(source map[string]any) map[string]any {
	copied := make(map[string]any, len(source))
	for key, value := range source {
		copied[key] = cloneJSONValue(value)
	}
	return copied
}

func cloneJSONValue(value any) any {
	switch typed := value.(type) {
	case map[string]any:
		return cloneJSONObject(typed)
	case Object:
		return Object(cloneJSONObject(typed))
	case []any:
		copied := make([]any, len(typed))
		for i, element := range typed {
			copied[i] = cloneJSONValue(element)
		}
		return copied
	default:
		return value
	}
}

// objectKind is the type of a directory object.
type objectKind int

const (
	kindUser objectKind = iota + 1
	kindGroup
)

func (k objectKind) odataType() string {
	if k == kindUser {
		return "#microsoft.graph.user"
	}
	return "#microsoft.graph.group"
}

func (k objectKind) entitySet() string {
	if k == kindUser {
		return "users"
	}
	return "groups"
}

func (k objectKind) resourceName() string {
	if k == kindUser {
		return "User"
	}
	return "Group"
}

// directoryObject is one stored user or group.
type directoryObject struct {
	// sequence orders objects by creation; it also pages collections and delta rounds.
	sequence uint64
	// changed is the sequence of the object's last change of properties or existence: creation,
	// update, soft deletion or restoration. Delta queries compare it with their token's.
	changed uint64
	kind    objectKind
	props   Object
	// members and memberIndex are used by groups only; members is in the order added.
	members     []membership
	memberIndex map[string]struct{}
	// membersChanged is the sequence of a group's last membership change, and removedMembers
	// the latest removal of each former member. Keeping only the latest event per member is
	// enough for delta queries, which report a member's current state, and keeps the history
	// bounded by the number of distinct members instead of growing with every change.
	membersChanged uint64
	removedMembers map[string]memberRemoval
	// managerChanged is the sequence of a user's last manager link change, and formerManager the
	// manager that change took away ("" when it set one), for "manager@delta".
	managerChanged uint64
	formerManager  string
	// sessionsValidFrom is a user's signInSessionsValidFromDateTime (see sessions.go): kept
	// apart from props, as Graph computes it and returns it only on $select.
	sessionsValidFrom time.Time
	// licenses are a group's assignedLicenses (see licenses.go).
	licenses []assignedLicense
	// accessPass is a user's Temporary Access Pass, nil when none (see credentials.go).
	accessPass *accessPass
	// password is what the emulator knows of a user's password: a salted hash, never the
	// password (see passwords.go).
	password *passwordState
}

func (o *directoryObject) id() string { return o.props.ID() }

// membership is one member reference of a group. Its sequence, that of the addition, pages the
// members collection and tells delta queries when the member was added.
type membership struct {
	sequence uint64
	memberID string
	kind     objectKind
}

// memberRemoval is the latest removal of a former member from a group.
type memberRemoval struct {
	sequence uint64
	kind     objectKind
}

// tombstone is what delta queries know of an object deleted for good.
type tombstone struct {
	// sequence is the deletion's; created is the object's creation sequence, which orders a delta
	// round.
	sequence uint64
	created  uint64
	kind     objectKind
	id       string
}

// directory holds every object. It is not safe for concurrent use; Server guards it.
type directory struct {
	lastSequence uint64
	objects      map[string]*directoryObject
	users        []*directoryObject // in creation order
	groups       []*directoryObject // in creation order
	// userIDByPrincipalName maps a lowercased userPrincipalName to the user's id.
	userIDByPrincipalName map[string]string
	// managers maps a user's id to their manager's id.
	managers map[string]string
	// deletedUsers holds soft-deleted users by id, in deletion order, until restored; their
	// userPrincipalName stays reserved, as in Entra.
	deletedUsers []*directoryObject
	// tombstones records objects deleted for good, in deletion order, for delta queries.
	tombstones []tombstone
	// epoch tells this directory's delta tokens from those of another Server, such as an
	// emulator that has since restarted, whose sequences mean nothing here.
	epoch string
}

func newDirectory() *directory {
	return &directory{
		epoch:                 newGUID()[:8],
		objects:               make(map[string]*directoryObject),
		userIDByPrincipalName: make(map[string]string),
		managers:              make(map[string]string),
	}
}

func (d *directory) nextSequence() uint64 {
	d.lastSequence++
	return d.lastSequence
}

// add stores props as a new object of kind under a fresh id and returns it.
func (d *directory) add(kind objectKind, props Object) *directoryObject {
	id := newGUID()
	for d.objects[id] != nil {
		id = newGUID()
	}
	props["id"] = id
	sequence := d.nextSequence()
	object := &directoryObject{sequence: sequence, changed: sequence, kind: kind, props: props}
	d.objects[id] = object
	switch kind {
	case kindUser:
		d.users = append(d.users, object)
		d.userIDByPrincipalName[strings.ToLower(props.String("userPrincipalName"))] = id
	case kindGroup:
		object.memberIndex = make(map[string]struct{})
		object.removedMembers = make(map[string]memberRemoval)
		d.groups = append(d.groups, object)
	}
	return object
}

// lookup returns the object with id, if it is of kind.
func (d *directory) lookup(kind objectKind, id string) (*directoryObject, bool) {
	object, ok := d.objects[strings.ToLower(id)]
	if !ok || object.kind != kind {
		return nil, false
	}
	return object, true
}

// lookupUser finds a user by id or, as Graph allows, by userPrincipalName.
func (d *directory) lookupUser(idOrPrincipalName string) (*directoryObject, bool) {
	if strings.Contains(idOrPrincipalName, "@") {
		id, ok := d.userIDByPrincipalName[strings.ToLower(idOrPrincipalName)]
		if !ok {
			return nil, false
		}
		idOrPrincipalName = id
	}
	return d.lookup(kindUser, idOrPrincipalName)
}

// principalNameTaken reports whether a user other than exceptID, live or deleted, uses principalName.
func (d *directory) principalNameTaken(principalName, exceptID string) bool {
	id, ok := d.userIDByPrincipalName[strings.ToLower(principalName)]
	if ok && id != exceptID {
		return true
	}
	for _, deleted := range d.deletedUsers {
		if strings.EqualFold(deleted.props.String("userPrincipalName"), principalName) && deleted.id() != exceptID {
			return true
		}
	}
	return false
}

// update applies PATCH changes to object's properties and records the change.
func (d *directory) update(object *directoryObject, changes Object) {
	if len(changes) == 0 {
		return
	}
	merge(object.props, changes)
	object.changed = d.nextSequence()
}

// softDelete detaches a user as remove does and keeps it among the deleted users.
func (d *directory) softDelete(user *directoryObject) {
	d.detach(user)
	user.changed = d.nextSequence()
	d.deletedUsers = append(d.deletedUsers, user)
}

// restore brings a deleted user back; it reports false if id is not a deleted user.
func (d *directory) restore(id string) (*directoryObject, bool) {
	for i, deleted := range d.deletedUsers {
		if deleted.id() == strings.ToLower(id) {
			d.deletedUsers = slices.Delete(d.deletedUsers, i, i+1)
			d.objects[deleted.id()] = deleted
			d.users = append(d.users, deleted)
			d.userIDByPrincipalName[strings.ToLower(deleted.props.String("userPrincipalName"))] = deleted.id()
			deleted.changed = d.nextSequence()
			return deleted, true
		}
	}
	return nil, false
}

// renameUser moves the userPrincipalName index entry of user to newPrincipalName.
func (d *directory) renameUser(user *directoryObject, newPrincipalName string) {
	delete(d.userIDByPrincipalName, strings.ToLower(user.props.String("userPrincipalName")))
	d.userIDByPrincipalName[strings.ToLower(newPrincipalName)] = user.id()
}

// remove deletes object for good, leaving a tombstone for delta queries.
func (d *directory) remove(object *directoryObject) {
	d.detach(object)
	d.tombstones = append(d.tombstones, tombstone{
		sequence: d.nextSequence(), created: object.sequence, kind: object.kind, id: object.id(),
	})
}

// detach takes object out of the directory with every membership and manager link that refers
// to it.
func (d *directory) detach(object *directoryObject) {
	id := object.id()
	delete(d.objects, id)
	switch object.kind {
	case kindUser:
		d.users = slices.DeleteFunc(d.users, func(candidate *directoryObject) bool { return candidate == object })
		delete(d.userIDByPrincipalName, strings.ToLower(object.props.String("userPrincipalName")))
	case kindGroup:
		d.groups = slices.DeleteFunc(d.groups, func(candidate *directoryObject) bool { return candidate == object })
	}
	for _, group := range d.groups {
		d.removeMember(group, id)
	}
	delete(d.managers, id)
	for userID, managerID := range d.managers {
		if managerID == id {
			d.clearManager(d.objects[userID])
		}
	}
}

// setManager points user's manager link at managerID.
func (d *directory) setManager(user *directoryObject, managerID string) {
	d.managers[user.id()] = managerID
	user.managerChanged, user.formerManager = d.nextSequence(), ""
}

// clearManager removes user's manager link; it reports false if there was none.
func (d *directory) clearManager(user *directoryObject) bool {
	former, set := d.managers[user.id()]
	if !set {
		return false
	}
	delete(d.managers, user.id())
	user.managerChanged, user.formerManager = d.nextSequence(), former
	return true
}

// addMember appends memberID to group; it reports false if memberID is already a member.
func (d *directory) addMember(group *directoryObject, memberID string) bool {
	if _, present := group.memberIndex[memberID]; present {
		return false
	}
	kind := kindUser
	if member, found := d.objects[memberID]; found {
		kind = member.kind
	}
	group.memberIndex[memberID] = struct{}{}
	group.members = append(group.members, membership{sequence: d.nextSequence(), memberID: memberID, kind: kind})
	group.membersChanged = d.lastSequence
	delete(group.removedMembers, memberID)
	return true
}

// removeMember drops memberID from group; it reports false if memberID was not a member.
func (d *directory) removeMember(group *directoryObject, memberID string) bool {
	if _, present := group.memberIndex[memberID]; !present {
		return false
	}
	delete(group.memberIndex, memberID)
	index := slices.IndexFunc(group.members, func(candidate membership) bool { return candidate.memberID == memberID })
	removal := memberRemoval{sequence: d.nextSequence(), kind: group.members[index].kind}
	group.members = slices.Delete(group.members, index, index+1)
	group.removedMembers[memberID] = removal
	group.membersChanged = removal.sequence
	return true
}

// newGUID returns a random version 4 GUID in Graph's lowercase 8-4-4-4-12 form.
func newGUID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error; it crashes the program if randomness is unavailable.
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ofKind returns the users or the groups in creation order.
func (d *directory) ofKind(kind objectKind) []*directoryObject {
	if kind == kindUser {
		return d.users
	}
	return d.groups
}
