package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/ad-writer/internal/ldap"
)

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantRetry bool
	}{
		{name: "DC unreachable", err: &ldap.Error{Op: "dial", Code: 200, Class: ldap.ClassUnavailable}, wantRetry: true},
		{name: "busy", err: &ldap.Error{Op: "add", Code: 51, Class: ldap.ClassUnavailable}, wantRetry: true},
		{name: "other end pending", err: fmt.Errorf("m: %w", errPending), wantRetry: true},
		{name: "constraint violation", err: &ldap.Error{Op: "modify", Code: 19, Class: ldap.ClassInvalid}, wantRetry: false},
		{name: "not orgsync's", err: fmt.Errorf("u: %w", errNotOwned), wantRetry: false},
		{name: "permanent", err: fmt.Errorf("x: %w", stream.ErrPermanent), wantRetry: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, retry := retryDelay(tt.err, 1)
			if diff := cmp.Diff(tt.wantRetry, retry); diff != "" {
				t.Errorf("retry (-want +got):\n%s", diff)
			}
		})
	}
}

// answering is a Directory whose member modifies answer with a fixed LDAP result code.
type answering struct {
	Directory
	code uint16
}

func (a answering) Modify(context.Context, string, []ldap.Change) error {
	if a.code == 0 {
		return nil
	}
	return &ldap.Error{Op: "modify", Code: a.code}
}

type noSender struct{}

func (noSender) Publish(context.Context, string, string, proto.Message) (*jetstream.PubAck, error) {
	return nil, errors.New("not used")
}

// TestMemberAnswers: an existing member on add, and a missing one on remove, are successes,
// recognised by result code (Samba answers 68 and 53 where AD answers 20 and 16).
func TestMemberAnswers(t *testing.T) {
	tests := []struct {
		name    string
		code    uint16
		remove  bool
		wantErr bool
	}{
		{name: "added", code: 0},
		{name: "already a member (AD)", code: ldap.ResultValueExists},
		{name: "already a member (Samba)", code: ldap.ResultEntryExists},
		{name: "not a member (AD)", code: ldap.ResultNoSuchAttribute, remove: true},
		{name: "not a member (Samba)", code: ldap.ResultUnwillingToPerfom, remove: true},
		{name: "unwilling on add is an error", code: ldap.ResultUnwillingToPerfom, wantErr: true},
		{name: "no such member object", code: ldap.ResultNoSuchObject, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(answering{code: tt.code}, noSender{}, slog.New(slog.DiscardHandler), Options{})
			err := w.changeMembers(t.Context(), "CN=g,OU=Groups,DC=x", []string{"CN=u,OU=Users,DC=x"}, tt.remove)
			if (err != nil) != tt.wantErr {
				t.Errorf("changeMembers: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestDesiredUserAttrs(t *testing.T) {
	u := &orgsyncv1.DesiredUser{
		WorkerId: "E1", MailNickname: "averyveryverylongnickname", DisplayName: "A", JobTitle: "Engineer",
		Attributes: map[string]string{"title": "AD title", "parentDistinguishedName": "OU=x,DC=y", "extensionAttribute1": "e1"},
	}
	got := desiredUserAttrs(u, "CN=M,DC=y")
	want := map[string]string{"sAMAccountName": "averyveryverylongnic", "title": "AD title", "employeeID": "E1", "manager": "CN=M,DC=y", "extensionAttribute1": "e1", "parentDistinguishedName": ""}
	pick := map[string]string{}
	for name := range want {
		pick[name] = got[name]
	}
	if diff := cmp.Diff(want, pick); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
