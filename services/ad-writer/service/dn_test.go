package service

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

// TestDNStructureAgainstSamba: a display name full of DN syntax ('=' included, which Samba
// refuses unescaped) becomes one escaped CN in the intended OU, while a parentDistinguishedName whose OU name slipped in unescaped (",DC=evil")
// is refused — FAILED, INVALID, nothing written, the DN's values not in the error.
func TestDNStructureAgainstSamba(t *testing.T) {
	d := newDomain(t, "dnshape", "Sales")
	d.startWriter(t, nil)
	odd := user("DN1", 1, func(u *orgsyncv1.DesiredUser) {
		u.DisplayName = `Doe, Jane+x "y" <z>;OU=Admins`
		u.Attributes["parentDistinguishedName"] = d.ou("Sales")
	})
	bent := user("DN2", 1, func(u *orgsyncv1.DesiredUser) {
		u.DisplayName = "Worker DN2"
		u.Attributes["parentDistinguishedName"] = "OU=Sales,DC=evil," + d.root
	})
	d.publish(t, odd)
	d.waitFor(t, time.Minute, odd)
	d.publish(t, bent)

	deadline := time.Now().Add(time.Minute)
	var result *orgsyncv1.WriterResult
	for result == nil {
		if time.Now().After(deadline) {
			t.Fatal("no result for the bent DN after a minute")
		}
		time.Sleep(100 * time.Millisecond)
		result = d.results(t)["ad.user.DN2"]
	}

	// Samba answers '=' and ';' hex-escaped: compare parsed.
	e := d.entry(t, "(employeeID=DN1)", "displayName")
	if want := `CN=Doe\, Jane\+x \"y\" \<z\>\;OU\=Admins,` + d.ou("Sales"); !ldap.SameDN(want, e.DN) || e.Get("displayName") != odd.GetUser().GetDisplayName() {
		t.Errorf("odd display name: DN %q, displayName %q; want DN %q", e.DN, e.Get("displayName"), want)
	}
	got := map[string]string{"outcome": result.GetOutcome().String(), "class": result.GetErrorClass().String(), "code": result.GetErrorCode()}
	want := map[string]string{"outcome": "OUTCOME_FAILED", "class": "ERROR_CLASS_INVALID", "code": "34"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result of the bent DN (-want +got):\n%s", diff)
	}
	if msg := result.GetErrorMessage(); !strings.Contains(msg, "DN refused") || strings.Contains(msg, "evil") || strings.Contains(msg, "Sales") {
		t.Errorf("error message %q: want the reason without the DN's values", msg)
	}
	entries, err := d.admin.Search(t.Context(), d.root, "(employeeID=DN2)", []string{"cn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the bent DN was written: %d entries", len(entries))
	}
}
