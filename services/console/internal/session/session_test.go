package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type value struct {
	Subject string
	CSRF    string
}

func newCodec(t *testing.T, secret string) *Codec {
	t.Helper()
	c, err := New([]byte(secret), true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const secret = "0123456789abcdef0123456789abcdef"

func TestSealOpen(t *testing.T) {
	c := newCodec(t, secret)
	want := value{Subject: "alex", CSRF: "token"}
	sealed, err := c.Seal("s", want, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "alex") {
		t.Error("the sealed cookie shows the subject")
	}
	var got value
	if err := c.Open("s", sealed, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
}

func TestOpenRefuses(t *testing.T) {
	c := newCodec(t, secret)
	valid, _ := c.Seal("s", value{Subject: "alex"}, time.Now().Add(time.Hour))
	expired, _ := c.Seal("s", value{Subject: "alex"}, time.Now().Add(-time.Second))
	otherKey, _ := newCodec(t, strings.Repeat("x", 32)).Seal("s", value{Subject: "alex"}, time.Now().Add(time.Hour))
	flipped := []byte(valid)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name, cookie, sealed string
		want                 error
	}{
		{"expired", "s", expired, ErrExpired},
		{"another key", "s", otherKey, ErrInvalid},
		{"changed", "s", string(flipped), ErrInvalid},
		{"moved to another cookie", "login", valid, ErrInvalid},
		{"empty", "s", "", ErrInvalid},
		{"not base64", "s", "!!!", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got value
			if err := c.Open(tt.cookie, tt.sealed, &got); !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestShortSecret(t *testing.T) {
	if _, err := New([]byte("short"), false); !errors.Is(err, ErrShortSecret) {
		t.Errorf("New = %v, want ErrShortSecret", err)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			c, err := New([]byte(secret), secure)
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			if err := c.Set(w, "s", value{Subject: "alex"}, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			cookies := w.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("%d cookies", len(cookies))
			}
			got := cookies[0]
			if !got.HttpOnly || got.SameSite != http.SameSiteLaxMode || got.Secure != secure || got.MaxAge <= 0 {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Secure=%v, an expiry", got, secure)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.AddCookie(got)
			var back value
			if err := c.Get(r, "s", &back); err != nil || back.Subject != "alex" {
				t.Errorf("Get = %v, %+v", err, back)
			}
		})
	}
}
