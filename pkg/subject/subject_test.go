package subject_test

import (
	"testing"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func TestToken(t *testing.T) {
	tests := map[string]string{
		"E1001":      "E1001",
		"jane.doe":   "jane%2Edoe",
		"a b":        "a%20b",
		"x*>":        "x%2A%3E",
		"":           "%",
		"unit/sales": "unit%2Fsales",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := subject.Token(in); got != want {
				t.Errorf("Token(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestObjectPath(t *testing.T) {
	tests := []struct {
		name string
		obj  *orgsyncv1.DesiredObject
		want string
	}{
		{"user", &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Object: &orgsyncv1.DesiredObject_User{User: &orgsyncv1.DesiredUser{WorkerId: "E.1"}}}, "entra.user.E%2E1"},
		{"group", &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_AD, Object: &orgsyncv1.DesiredObject_Group{Group: &orgsyncv1.DesiredGroup{GroupKey: "unit-sales"}}}, "ad.group.unit-sales"},
		{"membership", &orgsyncv1.DesiredObject{Target: orgsyncv1.Target_TARGET_ENTRA, Object: &orgsyncv1.DesiredObject_Membership{Membership: &orgsyncv1.DesiredMembership{GroupKey: "all-u1", MemberKey: "unit-u1"}}}, "entra.member.all-u1.unit-u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subject.ObjectPath(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ObjectPath = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := subject.ObjectPath(&orgsyncv1.DesiredObject{Key: "x"}); err == nil {
		t.Error("ObjectPath of an object without payload: no error")
	}
}
