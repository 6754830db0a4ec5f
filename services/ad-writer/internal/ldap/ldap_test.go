package ldap

import (
	"errors"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/orgsync/orgsync/pkg/pii"
)

func TestUnicodePwd(t *testing.T) {
	tests := []struct {
		name, password, want string
	}{
		{name: "ascii", password: "Ab1!", want: "\"\x00A\x00b\x001\x00!\x00\"\x00"},
		{name: "non-ascii", password: "é", want: "\"\x00\xe9\x00\"\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, UnicodePwd(tt.password)); diff != "" {
				t.Errorf("UnicodePwd (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGUIDRoundTrip(t *testing.T) {
	raw := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	guid := FormatGUID(raw)
	if diff := cmp.Diff("00112233-4455-6677-8899-aabbccddeeff", guid); diff != "" {
		t.Errorf("FormatGUID (-want +got):\n%s", diff)
	}
	filter, err := GUIDFilter(guid)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`(objectGUID=\33\22\11\00\55\44\77\66\88\99\aa\bb\cc\dd\ee\ff)`, filter); diff != "" {
		t.Errorf("GUIDFilter (-want +got):\n%s", diff)
	}
}

func TestSecretsAreNotLogged(t *testing.T) {
	got := describeChanges([]Change{
		{Op: Replace, Attr: "unicodePwd", Values: []string{UnicodePwd("Sekret-123")}, Secret: true},
		{Op: Replace, Attr: "userAccountControl", Values: []string{"512"}},
	})
	if diff := cmp.Diff(`replace unicodePwd [redacted]; replace userAccountControl ["512"]`, got); diff != "" {
		t.Errorf("describeChanges (-want +got):\n%s", diff)
	}
}

func TestDNHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "under", got: Under("CN=a,OU=Users,DC=x", "ou=users,dc=x"), want: true},
		{name: "not under", got: Under("CN=a,OU=Other,DC=x", "OU=Users,DC=x"), want: false},
		{name: "same", got: SameDN("CN=A B,OU=U,DC=x", "cn=a b,ou=u,dc=x"), want: true},
		{name: "escape", got: EscapeRDNValue(`Doe, Jane+x "y" <z>;OU=Admins `), want: `Doe\, Jane\+x \"y\" \<z\>\;OU\=Admins\ `},
		{name: "parent", got: func() []string { r, p := Parent("CN=a\\,b,OU=U,DC=x"); return []string{r, p} }(), want: []string{"CN=a\\,b", "OU=U,DC=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigRefusesPlainOrMissingCA(t *testing.T) {
	tests := []struct{ name, url, ca string }{
		{name: "not ldap", url: "http://dc:389", ca: "/nonexistent"},
		{name: "missing CA", url: "ldaps://dc:636", ca: "/nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Config{URL: tt.url, CAFile: tt.ca}, nil); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

// TestErrorsAndDryRunHidePersonalData: an LDAP error shows only the DN's shape and domain, and a
// dry-run line no names, unless ORGSYNC_TELEMETRY_PII=allow.
func TestErrorsAndDryRunHidePersonalData(t *testing.T) {
	const dn = "CN=Jane Doe,OU=Sales,DC=corp,DC=example"
	err := classify("add", dn, &goldap.Error{ResultCode: goldap.LDAPResultEntryAlreadyExists})
	changes := []Change{{Op: Replace, Attr: "displayName", Values: []string{"Jane Doe"}}, {Op: Replace, Attr: "title", Values: []string{"Engineer"}}}
	attrs := map[string][]string{"sn": {"Doe"}, "department": {"Sales"}}
	for _, tc := range []struct {
		policy                      string
		wantErr, wantMod, wantAttrs string
	}{
		{"", `ldap add "CN=[redacted],OU=[redacted],DC=corp,DC=example": result 68 (Entry Already Exists)`,
			`replace displayName [redacted]; replace title ["Engineer"]`, `department=["Sales"]; sn=[redacted]`},
		{"allow", `ldap add "CN=Jane Doe,OU=Sales,DC=corp,DC=example": result 68 (Entry Already Exists)`,
			`replace displayName ["Jane Doe"]; replace title ["Engineer"]`, `department=["Sales"]; sn=["Doe"]`},
	} {
		t.Run("policy "+tc.policy, func(t *testing.T) {
			t.Setenv(pii.Variable, tc.policy)
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMod, describeChanges(changes)); diff != "" {
				t.Errorf("describeChanges (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAttrs, describeAttrs(attrs)); diff != "" {
				t.Errorf("describeAttrs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestClassify checks what each DC answer means to the writer, and the attribute read from the
// diagnostic message where AD or Samba names one. Values in the messages never reach Property.
func TestClassify(t *testing.T) {
	tests := []struct {
		name         string
		code         uint16
		diagnostic   string
		wantClass    Class
		wantProperty string
	}{
		{"AD duplicate sAMAccountName on add", goldap.LDAPResultEntryAlreadyExists,
			"00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0", ClassExists, ""},
		{"Samba duplicate sAMAccountName", goldap.LDAPResultEntryAlreadyExists,
			"samldb: Account name (sAMAccountName) 'jdoe' already in use!", ClassExists, "sAMAccountName"},
		{"Samba duplicate userPrincipalName", goldap.LDAPResultConstraintViolation,
			"samldb: userPrincipalName 'jane@corp.example.test' is already in use", ClassExists, "userPrincipalName"},
		{"AD constraint on userPrincipalName", goldap.LDAPResultConstraintViolation,
			"000021C8: AtrErr: DSID-03200BBA, #1:\n\t0: 000021C8: DSID-03200BBA, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 90290 (userPrincipalName)\n",
			ClassInvalid, "userPrincipalName"},
		{"AD sAMAccountName too long", goldap.LDAPResultConstraintViolation,
			"000021C8: AtrErr: DSID-03200E96, #1:\n\t0: 000021C8: DSID-03200E96, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 900dd (sAMAccountName)",
			ClassInvalid, "sAMAccountName"},
		{"invalid syntax of employeeID", goldap.LDAPResultInvalidAttributeSyntax,
			"00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, data 0, v4563 employeeID", ClassInvalid, "employeeID"},
		{"naming violation", goldap.LDAPResultNamingViolation,
			"00002099: NameErr: DSID-0305109C, problem 2005 (NAMING_VIOLATION), data 0, best match of: 'OU=Users'", ClassInvalid, ""},
		{"mail is not read inside mailNickname", goldap.LDAPResultConstraintViolation,
			"constraint on mailNickname", ClassInvalid, "mailNickname"},
		{"busy", goldap.LDAPResultBusy, "", ClassUnavailable, ""},
		{"no such object", goldap.LDAPResultNoSuchObject, "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT)", ClassNotFound, ""},
		{"insufficient access", goldap.LDAPResultInsufficientAccessRights, "", ClassForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify("add", "CN=x", goldap.NewError(tt.code, errors.New(tt.diagnostic)))
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("classify returned %T", err)
			}
			if diff := cmp.Diff([2]any{tt.wantClass, tt.wantProperty}, [2]any{got.Class, got.Property}); diff != "" {
				t.Errorf("class, property (-want +got):\n%s", diff)
			}
			if strings.Contains(got.Error(), "jdoe") || strings.Contains(got.Error(), "jane@") {
				t.Errorf("error text quotes a value: %s", got.Error())
			}
		})
	}
}
