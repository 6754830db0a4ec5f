// Package subject names orgsync's NATS subjects: the HR subjects of events, and the paths of
// directory objects under which DIRECTORY, RESULTS, AUDIT and DEADLETTER keep them. It holds no
// JetStream plumbing (that is pkg/stream), so code that only names objects needs no NATS.
package subject

import (
	"fmt"
	"strings"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Token makes s safe as one NATS subject token: bytes outside [A-Za-z0-9_-] (dots, wildcards,
// spaces, anything else) are percent-encoded, so distinct ids give distinct tokens.
func Token(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// HRWorkerSubject is the HR subject of a worker event.
func HRWorkerSubject(source, workerID string) string {
	return "hr." + Token(source) + ".worker." + Token(workerID)
}

// HRUnitSubject is the HR subject of an org unit event.
func HRUnitSubject(source, orgUnitID string) string {
	return "hr." + Token(source) + ".unit." + Token(orgUnitID)
}

// HRSnapshotSubject is the HR subject of a snapshot marker.
func HRSnapshotSubject(source, snapshotID string) string {
	return "hr." + Token(source) + ".snapshot." + Token(snapshotID)
}

// HRSubject is the subject an HR event is published under.
func HRSubject(event *orgsyncv1.HREvent) (string, error) {
	switch p := event.GetPayload().(type) {
	case *orgsyncv1.HREvent_Worker:
		return HRWorkerSubject(event.GetSource(), p.Worker.GetWorkerId()), nil
	case *orgsyncv1.HREvent_OrgUnit:
		return HRUnitSubject(event.GetSource(), p.OrgUnit.GetOrgUnitId()), nil
	case *orgsyncv1.HREvent_Snapshot:
		return HRSnapshotSubject(event.GetSource(), p.Snapshot.GetSnapshotId()), nil
	default:
		return "", fmt.Errorf("HR event %q has no payload", event.GetEventId())
	}
}

// TargetName is the subject token of a target: "entra" or "ad".
func TargetName(target orgsyncv1.Target) string {
	switch target {
	case orgsyncv1.Target_TARGET_ENTRA:
		return "entra"
	case orgsyncv1.Target_TARGET_AD:
		return "ad"
	default:
		return "unknown"
	}
}

// UserPath is the object path of a worker's user in target, e.g. "entra.user.E1001".
func UserPath(target orgsyncv1.Target, workerID string) string {
	return TargetName(target) + ".user." + Token(workerID)
}

// GroupPath is the object path of a group in target, e.g. "entra.group.unit-sales".
func GroupPath(target orgsyncv1.Target, groupKey string) string {
	return TargetName(target) + ".group." + Token(groupKey)
}

// MemberPath is the object path of a membership in target, e.g. "entra.member.unit-sales.E1001".
func MemberPath(target orgsyncv1.Target, groupKey, memberKey string) string {
	return TargetName(target) + ".member." + Token(groupKey) + "." + Token(memberKey)
}

// ObjectPath is the part of an object's subjects after the stream prefix, e.g.
// "entra.user.E1001" or "entra.member.unit-sales.E1001". DIRECTORY, RESULTS and AUDIT all name
// an object by it.
func ObjectPath(obj *orgsyncv1.DesiredObject) (string, error) {
	switch o := obj.GetObject().(type) {
	case *orgsyncv1.DesiredObject_User:
		return UserPath(obj.GetTarget(), o.User.GetWorkerId()), nil
	case *orgsyncv1.DesiredObject_Group:
		return GroupPath(obj.GetTarget(), o.Group.GetGroupKey()), nil
	case *orgsyncv1.DesiredObject_Membership:
		return MemberPath(obj.GetTarget(), o.Membership.GetGroupKey(), o.Membership.GetMemberKey()), nil
	default:
		return "", fmt.Errorf("desired object %q has no object", obj.GetKey())
	}
}

// DirectorySubject is the DIRECTORY subject of obj.
func DirectorySubject(obj *orgsyncv1.DesiredObject) (string, error) {
	path, err := ObjectPath(obj)
	return "dir." + path, err
}

// DeadLetterSubject is the DEADLETTER subject of the object at path.
func DeadLetterSubject(path string) string { return "dead." + path }

// ResultSubject is the RESULTS subject of the object at path.
func ResultSubject(path string) string { return "results." + path }

// AuditSubject is the AUDIT subject of the object at path.
func AuditSubject(path string) string { return "audit." + path }

// DirectoryFilter is the DIRECTORY subject filter of one target, e.g. "dir.entra.>".
func DirectoryFilter(target orgsyncv1.Target) string { return "dir." + TargetName(target) + ".>" }

// ResultsFilter is the RESULTS subject filter of one target.
func ResultsFilter(target orgsyncv1.Target) string { return "results." + TargetName(target) + ".>" }
