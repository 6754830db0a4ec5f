package source

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Attribute is an account attribute hr-ingest can write back to an HR source.
type Attribute string

// The attributes written back.
const (
	// AttributeUPN is the account's userPrincipalName (the username HR shows).
	AttributeUPN Attribute = "upn"
	// AttributeMail is the account's mail (the work e-mail HR shows).
	AttributeMail Attribute = "mail"
)

// Attributes lists every attribute, in the order errors name them.
var Attributes = []Attribute{AttributeUPN, AttributeMail}

// Write-back targets: which directory's account is written back.
const (
	FromEntra = "entra"
	FromAD    = "ad"
)

// WriteBack is what hr-ingest writes back to a source once a writer reports a worker's account:
// nothing unless Attributes names some. A bamboohr or hibob source with an api block is written
// through the vendor's API; any source with Callback.URL set gets a signed webhook instead.
type WriteBack struct {
	// Attributes are the attributes written back; empty is off (the default).
	Attributes []Attribute
	// From is the directory whose account is written back: entra (default) or ad.
	From string
	// UsernameField is the vendor's field the UPN is written to: a BambooHR field name (a
	// custom field such as customUsername, or its numeric id), a Bob field path (e.g.
	// work.custom.field_1690000000000) or a Personio custom attribute's id. Required to write
	// the UPN through a vendor's API.
	UsernameField string
	// Callback, when its URL is set, receives the attributes as a Standard Webhooks signed
	// POST instead of the vendor's API.
	Callback Callback
}

// Callback is a signed webhook orgsync calls with a worker's account attributes.
type Callback struct {
	URL    string
	Secret webhook.Secret
}

// Enabled says whether anything is written back.
func (w WriteBack) Enabled() bool { return len(w.Attributes) > 0 }

// Writes says whether attribute is written back.
func (w WriteBack) Writes(attribute Attribute) bool { return slices.Contains(w.Attributes, attribute) }

// Target is the directory whose results are written back: From, or entra by default.
func (w WriteBack) Target() string {
	if w.From == "" {
		return FromEntra
	}
	return w.From
}

// ParseAttribute reads an attribute's name.
func ParseAttribute(s string) (Attribute, error) {
	for _, a := range Attributes {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("write-back attribute %q is not upn or mail", s)
}

// validateWriteBack checks that c can write back what it asks for: a channel (the vendor's API
// or a callback), and for the UPN through a vendor's API the field that holds it.
func (c Config) validateWriteBack() []error {
	w := c.WriteBack
	if !w.Enabled() {
		if w.Callback.URL != "" || w.UsernameField != "" || w.From != "" {
			return []error{fmt.Errorf("source %q: writeBack needs attributes (upn, mail) to write anything", c.Name)}
		}
		return nil
	}
	var errs []error
	for _, a := range w.Attributes {
		if _, err := ParseAttribute(string(a)); err != nil {
			errs = append(errs, fmt.Errorf("source %q: %w", c.Name, err))
		}
	}
	if w.From != "" && w.From != FromEntra && w.From != FromAD {
		errs = append(errs, fmt.Errorf("source %q: writeBack.from %q is not entra or ad", c.Name, w.From))
	}
	if w.Callback.URL != "" {
		if u, err := url.Parse(w.Callback.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("source %q: writeBack.webhook.url must be an http or https URL", c.Name))
		}
		if len(w.Callback.Secret) == 0 {
			errs = append(errs, fmt.Errorf("source %q: writeBack.webhook needs a secret (whsec_…)", c.Name))
		}
		return errs
	}
	if !c.WritesThroughAPI() {
		errs = append(errs, fmt.Errorf("source %q: kind %s has no API orgsync writes to: set writeBack.webhook (url and secret)", c.Name, c.Kind))
		return errs
	}
	if c.Kind == KindHiBob && c.API.WorkerIDField != "" {
		errs = append(errs, fmt.Errorf("source %q: write-back through Bob's API needs Bob's own ids as worker ids; with api.workerIdField use writeBack.webhook", c.Name))
	}
	if w.Writes(AttributeUPN) && w.UsernameField == "" {
		errs = append(errs, fmt.Errorf("source %q: writing the upn back needs writeBack.usernameField (the vendor's field for the username)", c.Name))
	}
	return errs
}

// WritesThroughAPI says whether the source's write-back goes to its vendor's API (a bamboohr,
// hibob or personio source with an api block and no callback).
func (c Config) WritesThroughAPI() bool {
	return c.WriteBack.Callback.URL == "" && (c.Kind == KindBambooHR || c.Kind == KindHiBob || c.Kind == KindPersonio) && c.API.BaseURL != ""
}
