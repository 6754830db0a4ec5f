package graph

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/orgsync/orgsync/pkg/targetattr"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// desiredFields are the mappable attributes org-model carries in DesiredUser's own fields (the
// others travel in DesiredUser.attributes), with the Graph property each lands in.
var desiredFields = map[string]struct {
	set      func(*orgsyncv1.DesiredUser, string)
	property func(emulator.Object) any
}{
	"displayName":    {func(u *orgsyncv1.DesiredUser, v string) { u.DisplayName = v }, prop("displayName")},
	"givenName":      {func(u *orgsyncv1.DesiredUser, v string) { u.GivenName = v }, prop("givenName")},
	"surname":        {func(u *orgsyncv1.DesiredUser, v string) { u.Surname = v }, prop("surname")},
	"mail":           {func(u *orgsyncv1.DesiredUser, v string) { u.Mail = v }, prop("mail")},
	"jobTitle":       {func(u *orgsyncv1.DesiredUser, v string) { u.JobTitle = v }, prop("jobTitle")},
	"department":     {func(u *orgsyncv1.DesiredUser, v string) { u.Department = v }, prop("department")},
	"companyName":    {func(u *orgsyncv1.DesiredUser, v string) { u.CompanyName = v }, prop("companyName")},
	"officeLocation": {func(u *orgsyncv1.DesiredUser, v string) { u.OfficeLocation = v }, prop("officeLocation")},
	"employeeType":   {func(u *orgsyncv1.DesiredUser, v string) { u.EmployeeType = v }, prop("employeeType")},
	"costCenter":     {func(u *orgsyncv1.DesiredUser, v string) { u.CostCenter = v }, nested("employeeOrgData", "costCenter")},
	"division":       {func(u *orgsyncv1.DesiredUser, v string) { u.Division = v }, nested("employeeOrgData", "division")},
	"businessPhone": {func(u *orgsyncv1.DesiredUser, v string) { u.BusinessPhone = v }, func(o emulator.Object) any {
		if phones, _ := o["businessPhones"].([]any); len(phones) > 0 {
			return phones[0]
		}
		return nil
	}},
}

func prop(name string) func(emulator.Object) any {
	return func(o emulator.Object) any { return o[name] }
}

func nested(object, name string) func(emulator.Object) any {
	return func(o emulator.Object) any {
		inner, _ := o[object].(map[string]any)
		return inner[name]
	}
}

// propertyOf is where a mappable attribute lands in the stored Graph user.
func propertyOf(name string) func(emulator.Object) any {
	if field, ok := desiredFields[name]; ok {
		return field.property
	}
	if directory.IsExtensionAttribute(directory.Field(name)) {
		return nested("onPremisesExtensionAttributes", name)
	}
	return prop(name)
}

// valueFor is a value Graph accepts for the attribute.
func valueFor(name string, i int) string {
	switch name {
	case "usageLocation":
		return "NL"
	case "preferredLanguage":
		return "nl-NL"
	case "mail":
		return "someone.else@corp.example.com"
	}
	return fmt.Sprintf("%s %d", name, i)
}

// TestEveryMappableAttributeReachesGraph goes over every attribute a policy may map for Entra
// (targetattr.Entra, the list org-model's policy accepts): from the desired user as org-model
// sends it, through the writer's attributes and the real SDK, the attribute reaches its Graph
// property on create and on update, and a value the policy no longer gives is cleared with null.
// An attribute added to the policy without a writer that writes it fails here.
func TestEveryMappableAttributeReachesGraph(t *testing.T) {
	emu := emulator.New()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	client, err := New(srv.URL+"/v1.0", NoAuth())
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range targetattr.Entra {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			base := func() *orgsyncv1.DesiredUser {
				id := fmt.Sprintf("A%03d", i)
				return &orgsyncv1.DesiredUser{WorkerId: id, EmployeeId: id, AccountEnabled: true, DisplayName: "Attribute " + name,
					UserPrincipalName: fmt.Sprintf("attr%d@corp.example.com", i), MailNickname: fmt.Sprintf("attr%d", i)}
			}
			with := func(value string) *orgsyncv1.DesiredUser {
				u := base()
				if field, ok := desiredFields[name]; ok {
					field.set(u, value)
				} else {
					u.Attributes = map[string]string{name: value}
				}
				return u
			}
			property := propertyOf(name)

			set := writer.UserAttributes(with(valueFor(name, i)))
			created, err := client.CreateUser(ctx, set, "Xy7!initial-password-Q")
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := emu.User(created.ID)
			if got := property(stored); got != valueFor(name, i) {
				t.Fatalf("after create, %s = %v, want %q", name, got, valueFor(name, i))
			}

			changed := writer.UserAttributes(with(valueFor(name, i) + "x"))
			if name == "usageLocation" || name == "preferredLanguage" || name == "mail" {
				changed = writer.UserAttributes(with(map[string]string{"usageLocation": "BE", "preferredLanguage": "fr-BE", "mail": "another@corp.example.com"}[name]))
			}
			want := changed.Values()
			if err := client.UpdateUser(ctx, created.ID, changed, directory.UserChanges(set, changed)); err != nil {
				t.Fatal(err)
			}
			stored, _ = emu.User(created.ID)
			if got := property(stored); got == valueFor(name, i) || got == nil {
				t.Fatalf("after update, %s = %v, want the new value (%v)", name, got, want)
			}

			if name == "displayName" {
				return // Graph requires it: it is never cleared.
			}
			cleared := writer.UserAttributes(with(""))
			if err := client.UpdateUser(ctx, created.ID, cleared, directory.UserChanges(changed, cleared)); err != nil {
				t.Fatal(err)
			}
			stored, _ = emu.User(created.ID)
			if got := property(stored); got != nil && got != "" {
				t.Errorf("after clearing, %s = %v, want it gone", name, got)
			}
			read, err := client.GetUser(ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if again := directory.UserChanges(read.UserAttributes, cleared); len(again) != 0 {
				t.Errorf("read back after clearing, the writer would still change %v", again)
			}
		})
	}
}
