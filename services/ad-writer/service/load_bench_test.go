package service

import (
	"fmt"
	"testing"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// BenchmarkInitialLoad loads 2,000 workers in 100 units (a group per unit, each worker a member
// of it, the first worker of each unit managing the others) into an empty OU tree of the Samba
// DC, and prints the LDAP operations used and the wall time.
func BenchmarkInitialLoad(b *testing.B) {
	const workers, units = 2000, 100
	for run := range b.N {
		d := newDomain(b, fmt.Sprintf("bench%d-%d", run, time.Now().Unix()))
		var objs []*orgsyncv1.DesiredObject
		for u := range units {
			objs = append(objs, group(fmt.Sprintf("b%d-u%03d", run, u), 1))
		}
		for w := range workers {
			unit := w % units
			id := fmt.Sprintf("W%d%05d", run, w)
			head := fmt.Sprintf("W%d%05d", run, unit)
			objs = append(objs, user(id, 1, func(u *orgsyncv1.DesiredUser) {
				if id != head {
					u.ManagerWorkerId = head
				}
			}))
		}
		for w := range workers {
			objs = append(objs, member(fmt.Sprintf("b%d-u%03d", run, w%units), orgsyncv1.MemberKind_MEMBER_KIND_USER, fmt.Sprintf("W%d%05d", run, w), 1, false))
		}
		d.publish(b, objs...)
		b.ResetTimer()
		start := time.Now()
		svc, stop := d.startWriter(b, nil)
		d.waitFor(b, 30*time.Minute, objs...)
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		ops := svc.Operations()
		total := int64(0)
		for _, n := range ops {
			total += n
		}
		b.ReportMetric(float64(total), "ldap-ops")
		b.ReportMetric(float64(ops["add"]+ops["modify"]+ops["modifydn"]+ops["delete"]), "ldap-writes")
		b.ReportMetric(float64(workers)/elapsed.Seconds(), "workers/s")
		spent := map[string]time.Duration{}
		for op, d := range svc.Durations() {
			spent[op] = d.Round(time.Millisecond)
		}
		fmt.Printf("initial load of %d workers in %d units: %v wall, LDAP operations %v (total %d), time in LDAP %v\n",
			workers, units, elapsed.Round(time.Millisecond), ops, total, spent)
	}
}
