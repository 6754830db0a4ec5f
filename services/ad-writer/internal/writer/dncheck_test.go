package writer

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/pii"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap/ldaptest"
)

func TestCheckDN(t *testing.T) {
	w := New(ldaptest.NewFake(testUsers, testGroups), acceptingSender{}, slog.New(slog.DiscardHandler), Options{
		BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups, LeaversOU: "OU=Leavers," + testBase,
		ManagedOUs: []string{testUsers, testGroups, "CN=Staff," + testBase},
	})
	for _, tc := range []struct {
		name, rdn, parent string
		wantReason        string
	}{
		{name: "user in a managed OU", rdn: "CN=Jane Doe", parent: testUsers},
		{name: "escaped display name", rdn: "CN=" + ldap.EscapeRDNValue("x,OU=Admins"), parent: testUsers},
		{name: "escaped plus and quotes", rdn: "CN=" + ldap.EscapeRDNValue(`a+b "c" <d>;`), parent: testUsers},
		{name: "sub-OU of a managed OU", rdn: "CN=Jane Doe", parent: "OU=Sales,OU=EMEA," + testUsers},
		{name: "managed container", rdn: "CN=Jane Doe", parent: "CN=Staff," + testBase},
		{name: "lower-case types", rdn: "cn=Jane Doe", parent: "ou=sales,ou=users,dc=corp,dc=example,dc=test"},
		{name: "unescaped display name adds an RDN", rdn: "CN=x,OU=Admins", parent: testUsers,
			wantReason: "the object's name adds RDNs: 2 RDNs above the parent instead of 1"},
		{name: "multi-valued RDN", rdn: "CN=Jane+UID=admin", parent: testUsers,
			wantReason: "the object's RDN is not a single non-empty CN value"},
		{name: "not a CN", rdn: "OU=Jane", parent: testUsers, wantReason: "the object's RDN is not a single non-empty CN value"},
		{name: "empty CN", rdn: "CN=", parent: testUsers, wantReason: "the object's RDN is not a single non-empty CN value"},
		{name: "DC injected into the parent", rdn: "CN=Jane Doe", parent: "OU=Sales,DC=evil," + testUsers,
			wantReason: "the parent has an RDN other than a single OU value below the managed OU"},
		{name: "CN injected into the parent", rdn: "CN=Jane Doe", parent: "CN=Domain Admins,OU=Sales," + testUsers,
			wantReason: "the parent has an RDN other than a single OU value below the managed OU"},
		{name: "parent outside the managed OUs", rdn: "CN=Jane Doe", parent: "OU=Admins," + testBase,
			wantReason: "the parent is not a managed OU or below one"},
		{name: "parent that does not parse", rdn: "CN=Jane Doe", parent: "OU=Sales,=x", wantReason: "the DN does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.checkDN(tc.rdn, tc.parent)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("checkDN refused a well-formed DN: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrDNStructure) || !strings.Contains(err.Error(), tc.wantReason) {
				t.Fatalf("checkDN = %v, want ErrDNStructure with %q", err, tc.wantReason)
			}
			if ldap.ClassOf(err) != ldap.ClassInvalid || errorClass(err) != orgsyncv1.ErrorClass_ERROR_CLASS_INVALID {
				t.Errorf("class %v, want invalid", ldap.ClassOf(err))
			}
			if _, retry := retryDelay(err, 1); retry {
				t.Error("a refused DN is retried")
			}
			if strings.Contains(err.Error(), "Jane") || strings.Contains(err.Error(), "Sales") {
				t.Errorf("the error shows the DN's values: %v", err)
			}
		})
	}
}

// TestRefusedDNIsAPermanentFailure: a desired user whose parentDistinguishedName was built from
// HR data with an RDN injected is reported FAILED/INVALID, never written, and neither the result
// nor the log line shows the DN's values by default.
func TestRefusedDNIsAPermanentFailure(t *testing.T) {
	t.Setenv(pii.Variable, "")
	dir := ldaptest.NewFake(testUsers, testGroups)
	sender := recordingSender{results: map[string]*orgsyncv1.WriterResult{}}
	var logs bytes.Buffer
	logger := logging.NewWithOptions(&logs, "ad-writer", slog.LevelInfo, logging.Options{})
	w := New(dir, sender, logger, Options{BaseDN: testBase, UsersOU: testUsers, GroupsOU: testGroups})

	obj := testUser("E7", "Engineer", 1)
	obj.GetUser().DisplayName = "Jane Doe"
	obj.GetUser().Attributes = map[string]string{"parentDistinguishedName": "OU=Sales Team,DC=evil," + testUsers}
	err := w.HandleBatch(t.Context(), messages(t, obj))[0]
	if err == nil {
		t.Fatal("the batch accepted a DN with an injected RDN")
	}
	result := sender.results["results.ad.user.E7"]
	written, err := dir.Search(t.Context(), testBase, "(objectClass=user)", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Outcome orgsyncv1.Outcome
		Class   orgsyncv1.ErrorClass
		Code    string
		Written int
	}{result.GetOutcome(), result.GetErrorClass(), result.GetErrorCode(), len(written)}
	want := got
	want.Outcome, want.Class, want.Code, want.Written = orgsyncv1.Outcome_OUTCOME_FAILED, orgsyncv1.ErrorClass_ERROR_CLASS_INVALID, "34", 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	for what, text := range map[string]string{"error message": result.GetErrorMessage(), "log": logs.String()} {
		if !strings.Contains(text, "DN refused") {
			t.Errorf("%s does not say the DN was refused: %s", what, text)
		}
		for _, personal := range []string{"Jane", "Sales Team", "evil"} {
			if strings.Contains(text, personal) {
				t.Errorf("%s shows %q: %s", what, personal, text)
			}
		}
	}
}
