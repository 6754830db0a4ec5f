package directory

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPropertyFromMessage(t *testing.T) {
	tests := []struct {
		message      string
		wantProperty string
		wantConflict bool
	}{
		{"Property userPrincipalName is invalid.", "userPrincipalName", false},
		{"Invalid value specified for property 'mailNickname' of resource 'User'.", "mailNickname", false},
		{"Property displayName value is required but is empty or missing.", "displayName", false},
		{"Another object with the same value for property userPrincipalName already exists.", "userPrincipalName", true},
		{"Another object with the same value for property proxyAddresses already exists.", "proxyAddresses", true},
		{"The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.", "userPrincipalName", false},
		{"One or more added object references already exist for the following modified properties: 'members'.", "", false},
		{"Property is something else entirely", "", false},
		{"The specified password does not comply with password complexity requirements.", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			property, conflict := PropertyFromMessage(tt.message)
			if diff := cmp.Diff([2]any{tt.wantProperty, tt.wantConflict}, [2]any{property, conflict}); diff != "" {
				t.Errorf("PropertyFromMessage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefineBadRequest(t *testing.T) {
	tests := []struct {
		name       string
		err        Error
		detailCode string
		target     string
		want       Error
	}{
		{
			name:       "ObjectConflict detail is a conflict about its target",
			err:        Error{Status: 400, Class: ClassInvalid, Code: CodeRequestBadRequest, Message: "anything"},
			detailCode: DetailObjectConflict, target: "userPrincipalName",
			want: Error{Status: 400, Class: ClassConflict, Code: CodeRequestBadRequest, Message: "anything", Property: "userPrincipalName"},
		},
		{
			name:       "InvalidValue detail is invalid, about its target",
			err:        Error{Status: 400, Class: ClassInvalid, Code: CodeRequestBadRequest, Message: "Property userPrincipalName is invalid."},
			detailCode: DetailInvalidValue, target: "userPrincipalName",
			want: Error{Status: 400, Class: ClassInvalid, Code: CodeRequestBadRequest, Message: "Property userPrincipalName is invalid.", Property: "userPrincipalName"},
		},
		{
			name: "no details: the documented conflict message",
			err:  Error{Status: 400, Class: ClassInvalid, Code: CodeRequestBadRequest, Message: "Another object with the same value for property mailNickname already exists."},
			want: Error{Status: 400, Class: ClassConflict, Code: CodeRequestBadRequest, Message: "Another object with the same value for property mailNickname already exists.", Property: "mailNickname"},
		},
		{
			name: "no details: the documented invalid message",
			err:  Error{Status: 400, Class: ClassInvalid, Code: CodeRequestBadRequest, Message: "Property userPrincipalName is invalid."},
			want: Error{Status: 400, Class: ClassInvalid, Code: CodeRequestBadRequest, Message: "Property userPrincipalName is invalid.", Property: "userPrincipalName"},
		},
		{
			name: "a message is read only for Request_BadRequest",
			err:  Error{Status: 400, Class: ClassInvalid, Code: "BadRequest", Message: "Property userPrincipalName is invalid."},
			want: Error{Status: 400, Class: ClassInvalid, Code: "BadRequest", Message: "Property userPrincipalName is invalid."},
		},
		{
			name:       "not a 400: unchanged",
			err:        Error{Status: 404, Class: ClassNotFound, Code: "Request_ResourceNotFound"},
			detailCode: DetailInvalidValue, target: "id",
			want: Error{Status: 404, Class: ClassNotFound, Code: "Request_ResourceNotFound"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err
			got.RefineBadRequest(tt.detailCode, tt.target)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RefineBadRequest (-want +got):\n%s", diff)
			}
		})
	}
}
