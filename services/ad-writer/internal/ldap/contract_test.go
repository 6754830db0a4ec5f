package ldap_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/sambadc"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap/ldaptest"
)

// TestContract runs the Directory contract through Client against a real Samba AD DC: the same
// suite the in-memory fake passes. The DC is provisioned for this test binary, under the
// machine's DC lock (waiting while another test binary or run holds it).
func TestContract(t *testing.T) {
	dc, err := sambadc.Start(t.Context(), sambadc.Options{Waiting: func(lockFile string) {
		t.Logf("waiting for the Samba AD DC: another test or run holds %s", lockFile)
	}})
	if err != nil {
		t.Fatalf("starting the Samba AD DC: %v", err)
	}
	t.Cleanup(func() {
		if err := dc.Close(); err != nil {
			t.Errorf("stopping the Samba AD DC: %v", err)
		}
	})
	password, err := dc.Password()
	if err != nil {
		t.Fatal(err)
	}
	client, err := ldap.New(ldap.Config{URL: dc.URL, BindDN: dc.BindDN, BindPassword: password, CAFile: dc.CAFile, Timeout: time.Minute},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	var subtests atomic.Int64
	ldaptest.RunContract(t, func(t *testing.T) (ldaptest.Directory, string) {
		ou := fmt.Sprintf("OU=Contract %d,%s", subtests.Add(1), dc.BaseDN)
		if err := client.AddEntry(t.Context(), ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}}); err != nil {
			t.Fatalf("creating %s: %v", ou, err)
		}
		t.Cleanup(func() { removeAccounts(t, client, ou) })
		return client, ou
	})
}

// removeAccounts deletes the users and groups below base, whose names (sAMAccountName,
// userPrincipalName) are unique in the domain, so that the next subtest may use them again. The
// rest (OUs, contacts) stays until the DC is torn down: a delete costs Samba about 50 ms.
func removeAccounts(t *testing.T, client *ldap.Client, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	entries, err := client.Search(ctx, base, "(|(objectClass=user)(objectClass=group))", []string{"1.1"})
	if err != nil {
		t.Errorf("reading %s to remove its accounts: %v", base, err)
		return
	}
	for _, e := range entries {
		if err := client.DeleteEntry(ctx, e.DN); err != nil && ldap.Code(err) != ldap.ResultNoSuchObject {
			t.Errorf("removing %s: %v", e.DN, err)
		}
	}
}
