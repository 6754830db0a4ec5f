package directory

import (
	"fmt"
	"log/slog"
	"time"
)

// Secret is a credential orgsync created (a Temporary Access Pass). Its String, GoString,
// Format and LogValue never show it, so a Secret printed, logged or wrapped into an error by
// mistake says "[redacted]"; only Reveal gives the value, for the one call that delivers it.
type Secret struct{ value string }

// NewSecret wraps a credential's value.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the value. Call it only to hand the value to its recipient.
func (s Secret) Reveal() string { return s.value }

// Empty says whether there is no value.
func (s Secret) Empty() bool { return s.value == "" }

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// AccessPass is a user's Temporary Access Pass as Graph answered its creation: the only time
// Graph shows the pass itself.
type AccessPass struct {
	// ID is the authentication method's id, to delete it.
	ID     string
	Secret Secret
	Start  time.Time
	// LifetimeMinutes and IsUsableOnce are as Graph granted them.
	LifetimeMinutes int
	IsUsableOnce    bool
}

// Expires is the end of the pass's lifetime.
func (p AccessPass) Expires() time.Time {
	return p.Start.Add(time.Duration(p.LifetimeMinutes) * time.Minute)
}

// Mail is a plain-text message to send with Graph's sendMail.
type Mail struct {
	To      []string
	Subject string
	Body    string
}
