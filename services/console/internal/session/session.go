// Package session keeps the console's state between requests in cookies the browser cannot read
// or change: each value is JSON sealed with AES-256-GCM under a key derived from the configured
// secret, with its expiry inside the sealed part. Nothing is kept on the server, so any replica
// can serve any request.
package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MinSecretBytes is the shortest secret a Codec accepts.
const MinSecretBytes = 32

var (
	// ErrInvalid: the cookie is missing, was not sealed with this key, or was changed.
	ErrInvalid = errors.New("session cookie is missing or invalid")
	// ErrExpired: the cookie was valid but its time is over.
	ErrExpired = errors.New("session expired")
	// ErrShortSecret: the configured secret is too short to derive a key from.
	ErrShortSecret = fmt.Errorf("session secret must be at least %d bytes", MinSecretBytes)
)

// Codec seals and opens cookie values. It is safe for concurrent use.
type Codec struct {
	aead cipher.AEAD
	// Secure marks cookies Secure (the console is served over TLS).
	Secure bool
	now    func() time.Time
}

// New derives the cookie key from secret.
func New(secret []byte, secure bool) (*Codec, error) {
	if len(secret) < MinSecretBytes {
		return nil, ErrShortSecret
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "orgsync console session v1", 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the session key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Codec{aead: aead, Secure: secure, now: time.Now}, nil
}

// envelope is what is sealed: the value and when it stops being valid.
type envelope struct {
	Expires time.Time       `json:"exp"`
	Value   json.RawMessage `json:"v"`
}

// Seal returns value sealed for cookie name, valid until expires. The name is bound into the
// seal, so a value cannot be moved from one cookie to another.
func (c *Codec) Seal(name string, value any, expires time.Time) (string, error) {
	raw, err := json.Marshal(value)
	if err != nil {
		return "", fmt.Errorf("encoding the session: %w", err)
	}
	plain, err := json.Marshal(envelope{Expires: expires, Value: raw})
	if err != nil {
		return "", fmt.Errorf("encoding the session: %w", err)
	}
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := c.aead.Seal(nonce, nonce, plain, []byte(name))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open reads a value Seal made for cookie name into value.
func (c *Codec) Open(name, sealed string, value any) error {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < c.aead.NonceSize() {
		return ErrInvalid
	}
	plain, err := c.aead.Open(nil, raw[:c.aead.NonceSize()], raw[c.aead.NonceSize():], []byte(name))
	if err != nil {
		return ErrInvalid
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil {
		return ErrInvalid
	}
	if !c.now().Before(env.Expires) {
		return ErrExpired
	}
	if err := json.Unmarshal(env.Value, value); err != nil {
		return ErrInvalid
	}
	return nil
}

// Set seals value into cookie name on w: HttpOnly, SameSite=Lax, Secure when configured, path /,
// expiring with the value.
func (c *Codec) Set(w http.ResponseWriter, name string, value any, expires time.Time) error {
	sealed, err := c.Seal(name, value, expires)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: sealed, Path: "/", Expires: expires, MaxAge: int(time.Until(expires).Seconds()),
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// Get opens cookie name of r into value.
func (c *Codec) Get(r *http.Request, name string, value any) error {
	cookie, err := r.Cookie(name)
	if err != nil {
		return ErrInvalid
	}
	return c.Open(name, cookie.Value, value)
}

// Clear removes cookie name.
func (c *Codec) Clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode})
}
