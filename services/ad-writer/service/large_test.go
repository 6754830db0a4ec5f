package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// TestLargeGroup fills one group with 2,000 users: the memberships go out in chunks, and the
// group is read back with range retrieval (AD answers 1,500 values per range; Samba returns
// every value at once, and the client reads both).
func TestLargeGroup(t *testing.T) {
	d := newDomain(t, "large")
	svc, _ := d.startWriter(t, nil)
	const n = 2000
	objs := []*orgsyncv1.DesiredObject{group("big", 1)}
	for i := range n {
		objs = append(objs, user(fmt.Sprintf("B%04d", i), 1, nil))
	}
	for i := range n {
		objs = append(objs, member("big", orgsyncv1.MemberKind_MEMBER_KIND_USER, fmt.Sprintf("B%04d", i), 1, false))
	}
	start := time.Now()
	d.publish(t, objs...)
	d.waitFor(t, 10*time.Minute, objs...)
	t.Logf("2,000 users and memberships in %v; LDAP operations %v", time.Since(start), svc.Operations())

	members := d.members(t, "CN=Org - big,"+d.groups)
	if diff := cmp.Diff(n, len(members)); diff != "" {
		t.Errorf("members read with range retrieval (-want +got):\n%s", diff)
	}
	if ops := svc.Operations(); ops["modify"] > n+n/100 {
		t.Errorf("%d modifies: memberships were not chunked", ops["modify"])
	}
}
