// Package replay computes, as plain function calls, the desired directory state a fresh
// org-model derives from a sequence of HR events under a policy: no NATS, no JetStream, no
// servers. The chaos and bench oracles (deploy/scale) use it to know what the directory should
// hold, and it is what org-model's start does before it reconciles (service.reconcile): record
// every event, then compute everything at one moment.
package replay

import (
	"fmt"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
)

// Desired returns every desired object (no tombstones) that org-model computes at now from
// events, in order, under the policy file's contents (name is the file's name for messages),
// for every target the policy maps. Objects are sorted by target, kind and key.
func Desired(name string, policyYAML []byte, events []*orgsyncv1.HREvent, now time.Time) ([]*orgsyncv1.DesiredObject, error) {
	pol, err := policy.Parse(name, policyYAML)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	m := model.New(pol, model.TargetsOf(pol)...)
	for _, event := range events {
		m.Record(event, now)
	}
	return m.ComputeAll(now), nil
}
