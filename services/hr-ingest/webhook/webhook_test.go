package webhook

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// The example from the Standard Webhooks reference libraries' test suite.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestVerify(t *testing.T) {
	secret, err := ParseSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ParseSecret("whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	now := time.Unix(specTimestamp+10, 0)
	headers := func(mutate func(http.Header)) http.Header {
		h := http.Header{}
		h.Set(HeaderID, specID)
		h.Set(HeaderTimestamp, "1614265330")
		h.Set(HeaderSignature, specSignature)
		if mutate != nil {
			mutate(h)
		}
		return h
	}
	tests := []struct {
		name    string
		secrets []Secret
		header  http.Header
		body    string
		wantErr error
	}{
		{name: "spec example", secrets: []Secret{secret}, header: headers(nil), body: specBody},
		{name: "rotated: second secret matches", secrets: []Secret{other, secret}, header: headers(nil), body: specBody},
		{name: "several signatures, one valid", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Set(HeaderSignature, "v1,Zm9v "+specSignature) })},
		{name: "body changed", secrets: []Secret{secret}, header: headers(nil), body: specBody + " ", wantErr: ErrNoMatch},
		{name: "wrong secret", secrets: []Secret{other}, header: headers(nil), body: specBody, wantErr: ErrNoMatch},
		{name: "unknown version", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Set(HeaderSignature, "v2,"+specSignature[3:]) }), wantErr: ErrNoMatch},
		{name: "missing id", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Del(HeaderID) }), wantErr: ErrMissingHeader},
		{name: "missing signature", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Del(HeaderSignature) }), wantErr: ErrMissingHeader},
		{name: "timestamp not a number", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Set(HeaderTimestamp, "yesterday") }), wantErr: ErrBadTimestamp},
		{name: "timestamp too old", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Set(HeaderTimestamp, "1614264000") }), wantErr: ErrStaleTimestamp},
		{name: "timestamp in the future", secrets: []Secret{secret}, body: specBody,
			header: headers(func(h http.Header) { h.Set(HeaderTimestamp, "1614266000") }), wantErr: ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(tt.secrets, 5*time.Minute, func() time.Time { return now })
			id, _, err := v.Verify(tt.header, []byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && id != specID {
				t.Errorf("id = %q", id)
			}
		})
	}
}

func TestSignMatchesSpec(t *testing.T) {
	secret, _ := ParseSecret(specSecret)
	if got := Sign(secret, specID, time.Unix(specTimestamp, 0), []byte(specBody)); got != specSignature {
		t.Errorf("Sign = %q, want %q", got, specSignature)
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ="} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", bad)
		}
	}
}
