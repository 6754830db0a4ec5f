// Package login signs people in to the console with OpenID Connect: the authorization code flow
// with PKCE (RFC 7636, S256), a state and a nonce, the ID token verified against the issuer's
// keys. The access token it obtains is what the console sends to org-model and the writers on the
// person's behalf, so org-model records the person — not the console — as who approved.
//
// The issuer is discovered on the first login, not at start, so the console starts while its
// issuer is briefly unreachable. A Flow is safe for concurrent use.
package login

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors of the flow; none carries a token or a code.
var (
	// ErrIssuerUnavailable: the issuer's discovery document cannot be fetched.
	ErrIssuerUnavailable = errors.New("OIDC issuer unavailable")
	// ErrDenied: the issuer answered the authorization request with an error (the person declined,
	// or the request was refused).
	ErrDenied = errors.New("the sign-in was refused by the issuer")
	// ErrBadCallback: the callback's state does not match this browser's login, or it has no code.
	ErrBadCallback = errors.New("the sign-in answer does not belong to a sign-in started here")
	// ErrExchange: the code could not be exchanged for tokens, or the ID token is not valid.
	ErrExchange = errors.New("the sign-in could not be completed")
)

// Config describes the console as an OIDC client.
type Config struct {
	// Issuer is the OIDC issuer URL.
	Issuer string
	// ClientID and ClientSecret identify the console at the issuer; the secret is optional (a
	// public client proves itself with PKCE).
	ClientID, ClientSecret string
	// RedirectURL is the console's callback, e.g. https://console.example.com/auth/callback.
	RedirectURL string
	// Scopes are requested besides "openid" (e.g. "profile", and the API's scope so that the
	// access token is for orgsync's audience).
	Scopes []string
	// HTTPClient reaches the issuer; default a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Pending is what the console keeps (sealed, in a short-lived cookie) between sending the browser
// to the issuer and the callback.
type Pending struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	// Next is the console path to return to after the sign-in.
	Next string `json:"next"`
}

// Identity is who signed in and the token to act for them.
type Identity struct {
	Subject string
	// Name is the "name" claim, for showing; empty when the issuer sent none.
	Name        string
	AccessToken string
	Expiry      time.Time
}

// Flow runs the authorization code flow.
type Flow struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider
	oauth    *oauth2.Config
}

// New returns a Flow for cfg; nothing is fetched yet.
func New(cfg Config) *Flow {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Flow{cfg: cfg}
}

func (f *Flow) discover(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider != nil {
		return f.provider, f.oauth, nil
	}
	// The provider keeps its context for fetching keys later: it must outlive this request.
	provider, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), f.cfg.HTTPClient), f.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrIssuerUnavailable, err)
	}
	f.provider = provider
	f.oauth = &oauth2.Config{
		ClientID: f.cfg.ClientID, ClientSecret: f.cfg.ClientSecret, RedirectURL: f.cfg.RedirectURL,
		Endpoint: provider.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, f.cfg.Scopes...),
	}
	return f.provider, f.oauth, nil
}

// Start begins a sign-in: it returns the issuer URL to send the browser to and what to keep until
// the callback.
func (f *Flow) Start(ctx context.Context, next string) (string, Pending, error) {
	_, oauth, err := f.discover(ctx)
	if err != nil {
		return "", Pending{}, err
	}
	pending := Pending{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Next: next}
	url := oauth.AuthCodeURL(pending.State, oidc.Nonce(pending.Nonce), oauth2.S256ChallengeOption(pending.Verifier))
	return url, pending, nil
}

// Finish completes a sign-in from the callback request r and what Start kept.
func (f *Flow) Finish(r *http.Request, pending Pending) (Identity, error) {
	query := r.URL.Query()
	if query.Get("error") != "" {
		return Identity{}, fmt.Errorf("%w: %s", ErrDenied, query.Get("error"))
	}
	if pending.State == "" || query.Get("state") != pending.State || query.Get("code") == "" {
		return Identity{}, ErrBadCallback
	}
	provider, oauth, err := f.discover(r.Context())
	if err != nil {
		return Identity{}, err
	}
	ctx := oidc.ClientContext(r.Context(), f.cfg.HTTPClient)
	token, err := oauth.Exchange(ctx, query.Get("code"), oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		var retrieve *oauth2.RetrieveError
		if errors.As(err, &retrieve) {
			return Identity{}, fmt.Errorf("%w: the token endpoint answered %s", ErrExchange, retrieve.ErrorCode)
		}
		return Identity{}, fmt.Errorf("%w: token endpoint: %v", ErrExchange, err)
	}
	rawID, _ := token.Extra("id_token").(string)
	if rawID == "" {
		return Identity{}, fmt.Errorf("%w: no id_token in the answer", ErrExchange)
	}
	idToken, err := provider.Verifier(&oidc.Config{ClientID: f.cfg.ClientID}).Verify(ctx, rawID)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: id_token: %v", ErrExchange, err)
	}
	if idToken.Nonce != pending.Nonce {
		return Identity{}, fmt.Errorf("%w: id_token nonce does not match", ErrExchange)
	}
	var claims struct {
		Name string `json:"name"`
	}
	_ = idToken.Claims(&claims)
	// The session lasts as long as the access token it acts with.
	expiry := token.Expiry
	if expiry.IsZero() {
		expiry = idToken.Expiry
	}
	return Identity{Subject: idToken.Subject, Name: claims.Name, AccessToken: token.AccessToken, Expiry: expiry}, nil
}
