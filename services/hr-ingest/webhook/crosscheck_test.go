package webhook

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestAgreesWithReferenceLibrary cross-checks this package against the Standard Webhooks
// reference library in both directions: what one signs, the other verifies.
func TestAgreesWithReferenceLibrary(t *testing.T) {
	const encoded = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	reference, err := standardwebhooks.NewWebhook(encoded)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ParseSecret(encoded)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"worker.updated","data":{"workerId":"E1"}}`)
	now := time.Now()
	tests := []struct {
		name   string
		verify func(t *testing.T) error
	}{
		{name: "reference signs, orgsync verifies", verify: func(t *testing.T) error {
			signature, err := reference.Sign("msg_ref", now, body)
			if err != nil {
				t.Fatal(err)
			}
			header := http.Header{}
			header.Set(HeaderID, "msg_ref")
			header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			header.Set(HeaderSignature, signature)
			_, _, err = NewVerifier([]Secret{secret}, 5*time.Minute, nil).Verify(header, body)
			return err
		}},
		{name: "orgsync signs, reference verifies", verify: func(t *testing.T) error {
			header := http.Header{}
			SetHeaders(header, secret, "msg_ours", now, body)
			return reference.Verify(body, header)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.verify(t); err != nil {
				t.Errorf("verification failed: %v", err)
			}
		})
	}
}
