package service

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// TestForeignHolderOfAnIdentifier: accounts orgsync does not manage hold a sAMAccountName and a
// userPrincipalName that two workers' desired states ask for. Each create is refused by Samba and
// reported once as FAILED, a CONFLICT about the attribute; a third worker is written meanwhile.
func TestForeignHolderOfAnIdentifier(t *testing.T) {
	d := newDomain(t, "conflicts")
	outside := "OU=conflicts-outside," + dc.BaseDN
	if err := d.admin.AddEntry(t.Context(), outside, map[string][]string{"objectClass": {"top", "organizationalUnit"}}); err != nil && ldap.Code(err) != ldap.ResultEntryExists {
		t.Fatal(err)
	}
	for cn, attrs := range map[string]map[string][]string{
		"Foreign SAM": {"sAMAccountName": {"heldsam"}},
		"Foreign UPN": {"sAMAccountName": {"heldupnowner"}, "userPrincipalName": {"heldupn@corp.example.test"}},
	} {
		attrs["objectClass"] = []string{"top", "person", "organizationalPerson", "user"}
		if err := d.admin.AddEntry(t.Context(), "CN="+cn+","+outside, attrs); err != nil {
			t.Fatal(err)
		}
	}
	d.startWriter(t, nil)
	d.publish(t,
		user("C1", 1, func(u *orgsyncv1.DesiredUser) { u.Attributes["sAMAccountName"] = "heldsam" }),
		user("C2", 1, func(u *orgsyncv1.DesiredUser) { u.UserPrincipalName = "heldupn@corp.example.test" }),
	)
	ok := user("C3", 1, nil)
	d.publish(t, ok)
	d.waitFor(t, 60*time.Second, ok)

	type failure struct {
		Outcome  orgsyncv1.Outcome
		Class    orgsyncv1.ErrorClass
		Property string
	}
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]failure
	for {
		results := d.results(t)
		got = map[string]failure{}
		for _, id := range []string{"C1", "C2"} {
			r := results["ad.user."+id]
			got[id] = failure{r.GetOutcome(), r.GetErrorClass(), r.GetProperty()}
		}
		if got["C1"].Outcome == orgsyncv1.Outcome_OUTCOME_FAILED && got["C2"].Outcome == orgsyncv1.Outcome_OUTCOME_FAILED || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]failure{
		"C1": {orgsyncv1.Outcome_OUTCOME_FAILED, orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT, "sAMAccountName"},
		"C2": {orgsyncv1.Outcome_OUTCOME_FAILED, orgsyncv1.ErrorClass_ERROR_CLASS_CONFLICT, "userPrincipalName"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}
