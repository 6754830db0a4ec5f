package normalize

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

func TestText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "spaces folded", in: "  Mary \t Ann  ", want: "Mary Ann"},
		{name: "decomposed accent composed", in: "Jose\u0301", want: "José"},
		{name: "empty", in: "   ", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in); got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEmailAndPhone(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(string) (string, error)
		in      string
		want    string
		wantErr bool
	}{
		{name: "email lower-cased", fn: Email, in: " Jane.Doe@Example.COM ", want: "jane.doe@example.com"},
		{name: "email with display name", fn: Email, in: "Jane <jane@example.com>", wantErr: true},
		{name: "email without domain", fn: Email, in: "jane@", wantErr: true},
		{name: "phone international", fn: Phone, in: "+44 (20) 7946-0958", want: "+442079460958"},
		{name: "phone with extension", fn: Phone, in: "555.123.4567 ext. 12", want: "5551234567x12"},
		{name: "phone letters", fn: Phone, in: "555-CALL-NOW", wantErr: true},
		{name: "phone too long", fn: Phone, in: "+1234567890123456", wantErr: true},
		{name: "phone plus in the middle", fn: Phone, in: "55+5123", wantErr: true},
		{name: "empty is fine", fn: Phone, in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDateAndTime(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       string
		wantDate *orgsyncv1.Date
		wantErr  bool
	}{
		{name: "date", in: "2026-03-01", wantDate: &orgsyncv1.Date{Year: 2026, Month: 3, Day: 1}},
		{name: "slashes", in: "2026/03/01", wantDate: &orgsyncv1.Date{Year: 2026, Month: 3, Day: 1}},
		{name: "compact", in: "20260301", wantDate: &orgsyncv1.Date{Year: 2026, Month: 3, Day: 1}},
		{name: "date-time moved to the source's zone", in: "2026-02-28T20:00:00Z", wantDate: &orgsyncv1.Date{Year: 2026, Month: 3, Day: 1}},
		{name: "naive date-time", in: "2026-02-28T20:00:00", wantDate: &orgsyncv1.Date{Year: 2026, Month: 2, Day: 28}},
		{name: "ambiguous day and month", in: "01/03/2026", wantErr: true},
		{name: "no such day", in: "2026-02-30", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Date(tt.in, tokyo)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tt.wantDate, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	got, err := Time("2026-03-01 09:00:00", tokyo)
	if err != nil || !got.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("Time of a naive Tokyo time = %v, %v; want 2026-03-01T00:00:00Z", got, err)
	}
}
