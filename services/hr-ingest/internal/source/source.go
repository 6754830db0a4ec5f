// Package source is the configuration of an HR source: its name, its kind, the credentials its
// sender proves itself with, its time zone and its limits. It is the one description of a source
// in hr-ingest: the policy file is read into it, the service is configured with it, and the
// ingest pipeline builds each kind's Source from it.
package source

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Kind is how a source talks to orgsync.
type Kind string

// The source kinds.
const (
	// KindCanonical sends orgsync's own JSON events, signed per Standard Webhooks.
	KindCanonical Kind = "canonical"
	// KindSCIM sends SCIM bulk requests with a bearer token (Entra API-driven provisioning).
	KindSCIM Kind = "scim"
	// KindBambooHR sends BambooHR field-based webhooks, signed with the webhook's private key.
	KindBambooHR Kind = "bamboohr"
	// KindCSV uploads full exports as CSV with a bearer token.
	KindCSV Kind = "csv"
	// KindHiBob sends HiBob v2 webhooks (Bob-Signature) naming the employee that changed;
	// hr-ingest reads the employee through Bob's API.
	KindHiBob Kind = "hibob"
	// KindPersonio sends Personio's webhooks (API v2) naming the person that changed, with the
	// webhook's static token in Authorization; hr-ingest reads the person through Personio's API.
	KindPersonio Kind = "personio"
	// KindPoll is read, not pushed: hr-ingest polls the source's HTTP endpoint for records
	// changed since a cursor (see Poll).
	KindPoll Kind = "poll"
)

// Kinds lists every kind, in the order errors name them.
var Kinds = []Kind{KindCanonical, KindSCIM, KindBambooHR, KindCSV, KindHiBob, KindPersonio, KindPoll}

// ParseKind reads a kind's name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("kind %q is not one of %s", s, kindNames())
}

func kindNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// MinTokenLength is the shortest bearer token a scim or csv source accepts.
const MinTokenLength = 16

// DefaultSnapshotMaxBytes is a csv source's body limit unless it sets its own: a full export is
// larger than any webhook.
const DefaultSnapshotMaxBytes = 64 << 20

// Config is one HR source. Only Name and, per kind, its credentials are required.
type Config struct {
	Name string
	// Kind defaults to canonical.
	Kind Kind
	// Secrets are a canonical source's Standard Webhooks secrets (several during a rotation).
	Secrets []webhook.Secret
	// Keys are a bamboohr source's webhook private keys, a hibob source's webhook secrets, or a
	// personio source's webhook tokens (the Authorization header's exact value).
	Keys [][]byte
	// API is how hr-ingest reads an employee from the vendor when a webhook only says that the
	// employee changed (BambooHR event-based webhooks, HiBob); unset for a bamboohr source that
	// sends field-based webhooks only.
	API API
	// Tokens are a scim or csv source's bearer tokens.
	Tokens []string
	// Location is the time zone of dates and times without an offset; nil is UTC.
	Location *time.Location
	// RateRequests per RatePeriod (default 1s), with bursts of RateBurst; 0 is unlimited.
	RateRequests int
	RatePeriod   time.Duration
	RateBurst    int
	// MaxBodyBytes overrides the service's body limit for this source; a csv source's default is
	// DefaultSnapshotMaxBytes.
	MaxBodyBytes int64
	// CSVColumns maps worker fields to CSV headers; CSVComma is the delimiter (default ',').
	CSVColumns map[string]string
	CSVComma   rune
	// Poll is how a poll source is read (see poll.go).
	Poll Poll
	// WriteBack is what hr-ingest writes back to the source (see writeback.go); off by default.
	WriteBack WriteBack
}

// API is a vendor API hr-ingest reads notified employees from.
type API struct {
	// BaseURL is the API's base, e.g. https://api.bamboohr.com/api/gateway.php/acme/v1 or
	// https://api.hibob.com/v1.
	BaseURL string
	// User is HiBob's service user id or Personio's client id; BambooHR needs none.
	User string
	// Token is BambooHR's API key, HiBob's service user token or Personio's client secret.
	Token string
	// Fields are the vendor's field names or ids to read; empty is the connector's default.
	Fields []string
	// WorkerIDField, for a hibob source, is the Bob field the worker id is taken from (e.g.
	// work.employeeIdInCompany) instead of Bob's own id, which is longer than the 16 characters
	// Entra's and AD's employeeId hold; empty is Bob's id.
	WorkerIDField string
}

// Pulls says whether the source's webhooks are notifications whose employee hr-ingest fetches.
func (c Config) Pulls() bool {
	return c.Kind == KindHiBob || c.Kind == KindPersonio || c.Kind == KindBambooHR && c.API.BaseURL != ""
}

// WithDefaults returns c with its defaults filled in: kind canonical, UTC, a csv source's body
// limit.
func (c Config) WithDefaults() Config {
	if c.Kind == "" {
		c.Kind = KindCanonical
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Kind == KindCSV && c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultSnapshotMaxBytes
	}
	if c.Kind == KindPoll {
		c.Poll = c.Poll.WithDefaults()
	}
	return c
}

// Validate checks one source: a known kind, credentials for it, a valid CSV mapping.
func (c Config) Validate() error {
	var errs []error
	switch c.Kind {
	case "", KindCanonical:
		if len(c.Secrets) == 0 {
			errs = append(errs, fmt.Errorf("source %q needs a webhook secret", c.Name))
		}
	case KindBambooHR:
		if len(c.Keys) == 0 {
			errs = append(errs, fmt.Errorf("source %q needs a BambooHR private key", c.Name))
		}
		if c.API.BaseURL != "" || c.API.User != "" || c.API.Token != "" || c.API.Fields != nil {
			errs = append(errs, c.API.validate(c.Name, "", false)...)
		}
		if c.API.WorkerIDField != "" {
			errs = append(errs, fmt.Errorf("source %q: api.workerIdField applies to hibob sources only", c.Name))
		}
	case KindHiBob:
		if len(c.Keys) == 0 {
			errs = append(errs, fmt.Errorf("source %q needs a HiBob webhook secret", c.Name))
		}
		errs = append(errs, c.API.validate(c.Name, "a HiBob service user id", true)...)
	case KindPersonio:
		if len(c.Keys) == 0 {
			errs = append(errs, fmt.Errorf("source %q needs the Personio webhook's token", c.Name))
		}
		errs = append(errs, c.API.validate(c.Name, "the Personio API credentials' client id", true)...)
		if c.API.WorkerIDField != "" {
			errs = append(errs, fmt.Errorf("source %q: api.workerIdField applies to hibob sources only", c.Name))
		}
	case KindSCIM, KindCSV:
		if len(c.Tokens) == 0 {
			errs = append(errs, fmt.Errorf("source %q needs a bearer token", c.Name))
		}
	case KindPoll:
		errs = append(errs, c.Poll.validate(c.Name)...)
	default:
		errs = append(errs, fmt.Errorf("source %q: kind %q is not one of %s", c.Name, c.Kind, kindNames()))
	}
	errs = append(errs, c.validateWriteBack()...)
	if c.CSVColumns != nil {
		if err := snapshot.CheckMapping(c.CSVColumns); err != nil {
			errs = append(errs, fmt.Errorf("source %q: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// validate checks an API's base URL and credentials; user names the user id when one is needed.
func (a API) validate(source, user string, needUser bool) []error {
	var errs []error
	if u, err := url.Parse(a.BaseURL); a.BaseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("source %q needs the vendor API's base URL (api.baseURL, http or https)", source))
	}
	if needUser && a.User == "" {
		errs = append(errs, fmt.Errorf("source %q needs %s (api.user)", source, user))
	}
	if a.Token == "" {
		errs = append(errs, fmt.Errorf("source %q needs the vendor API's token (api.token)", source))
	}
	return errs
}

// ValidateAll checks every source and what they must not share: a name, or a scim source's
// token (at Entra's own path the token picks the source).
func ValidateAll(configs []Config) error {
	var errs []error
	seen := map[string]bool{}
	scimTokens := map[string]string{}
	for _, c := range configs {
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("source %q is configured twice", c.Name))
		}
		seen[c.Name] = true
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.Kind != KindSCIM {
			continue
		}
		for i, token := range c.Tokens {
			if other, taken := scimTokens[token]; taken {
				errs = append(errs, fmt.Errorf("source %q, token %d: scim source %q has the same token", c.Name, i+1, other))
			}
			scimTokens[token] = c.Name
		}
	}
	return errors.Join(errs...)
}
