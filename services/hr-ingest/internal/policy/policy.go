// Package policy reads hr-ingest's part of the policy file (ORGSYNC_CONFIG): its top-level
// "sources" list. Other top-level keys belong to other services and are left alone; inside
// "sources" every key is checked, and every problem of the file is reported at once, each as
// "file:line: why", in line order (pkg/policyfile, which org-model's policy parser uses too).
//
//	sources:
//	  - name: workday
//	    kind: canonical            # canonical | scim | bamboohr | csv | hibob | personio | poll
//	    secrets:                   # whsec_ secrets, bearer tokens or BambooHR private keys
//	      - env: WORKDAY_WEBHOOK_SECRET
//	      - file: /run/secrets/workday-next
//	    timezone: Europe/London    # how dates and times without an offset are read; default UTC
//	    rateLimit: {requests: 50, per: 1s, burst: 100}
//	    maxBodyBytes: 1048576
//	  - name: export
//	    kind: csv
//	    secrets: [{env: EXPORT_TOKEN}]
//	    csv:
//	      delimiter: ";"
//	      columns: {workerId: Employee ID, givenName: First Name, familyName: Last Name}
//	    hierarchy: [company, department]   # read by org-model: the attributes that form the org tree
//	  - name: bob
//	    kind: hibob                # also bamboohr, for event-based webhooks
//	    secrets: [{env: HIBOB_WEBHOOK_SECRET}]
//	    api:                       # where hr-ingest reads the notified employee
//	      baseURL: https://api.hibob.com/v1
//	      user: SERVICE-1234       # HiBob's service user id (BambooHR: none)
//	      token: {file: /run/secrets/hibob-token}
//	      fields: [root.id, root.firstName, root.surname]   # optional; the connector's default otherwise
//	    writeBack:                 # off unless attributes are named; docs/writeback.md
//	      attributes: [upn, mail]
//	      from: entra              # or ad: whose account is written back
//	      usernameField: work.custom.field_1690000000000   # the vendor's field for the UPN
//	      webhook: {url: https://hr.example.com/hooks/orgsync, secret: {env: HR_CALLBACK_SECRET}}  # any kind
//
//	  - name: afas
//	    kind: poll                 # hr-ingest reads the source (see pollKeys)
//	    secrets: [{file: /run/secrets/afas-token}]   # the endpoint's token, password or key
//	    poll:
//	      preset: afas
//	      url: https://12345.rest.afas.online/ProfitRestServices/connectors/Orgsync_Employees
//	      modifiedField: Gewijzigd
//	      fields: {workerId: Medewerker, givenName: Roepnaam, familyName: Achternaam}
//	      interval: 1m
//	      fullSyncEvery: 24h
//
// A secret variable or file may hold several values separated by white space (during a rotation).
package policy

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/orgsync/orgsync/pkg/policyfile"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Load reads the sources of the policy file at path; lookupEnv resolves secrets given by env.
// Each source's secrets become the credentials of its kind (webhook secrets, BambooHR keys or
// bearer tokens); an error names the source and the secret's position, never its value.
func Load(path string, lookupEnv func(string) (string, bool)) ([]source.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return Parse(path, data, lookupEnv)
}

type parser struct {
	lookupEnv func(string) (string, bool)
	// problems are the problems found so far, and name the file: the parse goes on after each.
	problems policyfile.Problems
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	p.problems.Add(n, format, args...)
}

// Parse reads the sources from data, naming file in errors. A bad file is reported whole: every
// problem as file:line: reason, in line order (policyfile.Errors).
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) ([]source.Config, error) {
	p := &parser{lookupEnv: lookupEnv, problems: policyfile.Problems{File: file}}
	root, err := policyfile.Decode(file, data)
	if err != nil {
		return nil, err
	}
	// Other top-level keys are other services' (org-model checks that each is known).
	top, err := p.problems.Fields(root, "the policy file")
	if !p.problems.Keep(err) {
		return nil, p.problems.Err()
	}
	sourcesNode, ok := top["sources"]
	if !ok {
		p.fail(root, "no sources: hr-ingest needs at least one")
		return nil, p.problems.Err()
	}
	if sourcesNode.Kind != yaml.SequenceNode {
		p.fail(sourcesNode, "sources must be a list")
		return nil, p.problems.Err()
	}
	var sources []source.Config
	names := map[string]int{}
	for _, n := range sourcesNode.Content {
		s, ok := p.source(n)
		if !ok {
			continue
		}
		if line, dup := names[s.Name]; dup {
			p.fail(n, "source %q is already defined on line %d", s.Name, line)
		}
		names[s.Name] = n.Line
		sources = append(sources, s)
	}
	if err := p.problems.Err(); err != nil {
		return nil, err
	}
	return sources, nil
}

// mapping reads n as a mapping with only the known keys (any key when none is given); a node
// that is not a mapping is recorded and nil returned.
func (p *parser) mapping(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	m, err := p.problems.Fields(n, what, known...)
	if !p.problems.Keep(err) {
		return nil
	}
	return m
}

func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	value, err := p.problems.Scalar(n, what)
	return value, p.problems.Keep(err)
}

func (p *parser) positive(n *yaml.Node, what string) int64 {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		p.fail(n, "%s must be a positive whole number, not %q", what, s)
		return 0
	}
	return v
}

func (p *parser) source(n *yaml.Node) (source.Config, bool) {
	// "hierarchy" (the worker attributes that form the source's org tree) is org-model's, which checks it.
	m := p.mapping(n, "a source", "name", "kind", "secrets", "timezone", "rateLimit", "maxBodyBytes", "csv", "hierarchy", "api", "poll", "writeBack")
	if m == nil {
		return source.Config{}, false
	}
	s := source.Config{Location: time.UTC}
	if v, ok := m["name"]; !ok {
		p.fail(n, "a source needs a name")
	} else if name, ok := p.scalar(v, "name"); ok {
		if !validName(name) {
			p.fail(v, "source name %q must be 1 to 64 letters, digits, '-' or '_'", name)
		}
		s.Name = name
	}
	if v, ok := m["kind"]; !ok {
		p.fail(n, "source %q needs a kind (canonical, scim, bamboohr, csv, hibob, personio or poll)", s.Name)
	} else if kind, ok := p.scalar(v, "kind"); ok {
		if k, err := source.ParseKind(kind); err != nil {
			p.fail(v, "%v", err)
		} else {
			s.Kind = k
		}
	}
	if v, ok := m["secrets"]; !ok {
		p.fail(n, "source %q needs secrets (a list of {env: NAME} or {file: PATH})", s.Name)
	} else {
		p.credentials(v, &s, p.secrets(v, s.Name))
	}
	if v, ok := m["timezone"]; ok {
		if tz, ok := p.scalar(v, "timezone"); ok {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				p.fail(v, "timezone %q is not an IANA time zone such as Europe/London", tz)
			} else {
				s.Location = loc
			}
		}
	}
	if v, ok := m["rateLimit"]; ok {
		if rl := p.mapping(v, "rateLimit", "requests", "per", "burst"); rl != nil {
			if r, ok := rl["requests"]; ok {
				s.RateRequests = int(p.positive(r, "rateLimit.requests"))
			} else {
				p.fail(v, "rateLimit needs requests")
			}
			s.RatePeriod = time.Second
			if per, ok := rl["per"]; ok {
				if text, ok := p.scalar(per, "rateLimit.per"); ok {
					d, err := time.ParseDuration(text)
					if err != nil || d <= 0 {
						p.fail(per, "rateLimit.per %q is not a positive duration such as 1s or 1m", text)
					}
					s.RatePeriod = d
				}
			}
			if b, ok := rl["burst"]; ok {
				s.RateBurst = int(p.positive(b, "rateLimit.burst"))
			}
		}
	}
	if v, ok := m["maxBodyBytes"]; ok {
		s.MaxBodyBytes = p.positive(v, "maxBodyBytes")
	}
	if v, ok := m["api"]; ok {
		if s.Kind != source.KindBambooHR && s.Kind != source.KindHiBob && s.Kind != source.KindPersonio {
			p.fail(v, "api settings only apply to a source of kind bamboohr, hibob or personio")
		}
		p.api(v, &s)
	}
	if v, ok := m["poll"]; ok {
		if s.Kind != source.KindPoll {
			p.fail(v, "poll settings only apply to a source of kind poll")
		}
		p.poll(v, &s)
	} else if s.Kind == source.KindPoll {
		p.fail(n, "source %q of kind poll needs poll settings (at least poll.url and poll.fields)", s.Name)
	}
	if v, ok := m["writeBack"]; ok {
		p.writeBack(v, &s)
	}
	if v, ok := m["csv"]; ok {
		if s.Kind != source.KindCSV {
			p.fail(v, "csv settings only apply to a source of kind csv")
		}
		if c := p.mapping(v, "csv", "delimiter", "columns"); c != nil {
			if d, ok := c["delimiter"]; ok {
				if text, ok := p.scalar(d, "csv.delimiter"); ok {
					r, size := utf8.DecodeRuneInString(text)
					if size == 0 || size != len(text) || r == '"' || r == '\r' || r == '\n' {
						p.fail(d, "csv.delimiter must be one character other than a quote or a line break")
					}
					s.CSVComma = r
				}
			}
			if cols, ok := c["columns"]; ok {
				if cm := p.mapping(cols, "csv.columns"); cm != nil {
					s.CSVColumns = map[string]string{}
					for field, header := range cm {
						if text, ok := p.scalar(header, "csv.columns."+field); ok {
							s.CSVColumns[field] = text
						}
					}
					if err := snapshot.CheckMapping(s.CSVColumns); err != nil {
						p.fail(cols, "csv.columns: %v", err)
					}
				}
			}
		}
	}
	return s, true
}

// api reads where and how hr-ingest reads a notified employee from the vendor:
// {baseURL: URL, user: ID, token: {env: NAME} | {file: PATH}, fields: [NAME…],
// workerIdField: FIELD (hibob)}.
func (p *parser) api(n *yaml.Node, s *source.Config) {
	m := p.mapping(n, "api", "baseURL", "user", "token", "fields", "workerIdField")
	if m == nil {
		return
	}
	if v, ok := m["baseURL"]; ok {
		s.API.BaseURL, _ = p.scalar(v, "api.baseURL")
	}
	if v, ok := m["user"]; ok {
		s.API.User, _ = p.scalar(v, "api.user")
	}
	if v, ok := m["workerIdField"]; ok {
		if s.Kind != source.KindHiBob {
			p.fail(v, "api.workerIdField applies to a source of kind hibob only")
		}
		s.API.WorkerIDField, _ = p.scalar(v, "api.workerIdField")
	}
	if v, ok := m["token"]; !ok {
		p.fail(n, "source %q needs api.token ({env: NAME} or {file: PATH})", s.Name)
	} else if values := p.secrets(&yaml.Node{Kind: yaml.SequenceNode, Line: v.Line, Content: []*yaml.Node{v}}, s.Name); len(values) > 0 {
		if len(values) > 1 {
			p.fail(v, "api.token of source %q must be one value", s.Name)
		}
		s.API.Token = values[0]
	}
	if v, ok := m["fields"]; ok {
		if v.Kind != yaml.SequenceNode {
			p.fail(v, "api.fields must be a list of the vendor's field names")
			return
		}
		s.API.Fields = []string{}
		for _, f := range v.Content {
			if name, ok := p.scalar(f, "api.fields"); ok {
				s.API.Fields = append(s.API.Fields, name)
			}
		}
	}
}

// credentials turns a source's secret values into the credentials of its kind.
func (p *parser) credentials(n *yaml.Node, s *source.Config, values []string) {
	for i, value := range values {
		switch s.Kind {
		case source.KindCanonical:
			secret, err := webhook.ParseSecret(value)
			if err != nil {
				p.fail(n, "source %q, secret %d: %v", s.Name, i+1, err)
				continue
			}
			s.Secrets = append(s.Secrets, secret)
		case source.KindBambooHR, source.KindHiBob, source.KindPersonio:
			s.Keys = append(s.Keys, []byte(value))
		case source.KindPoll:
			if i > 0 {
				p.fail(n, "source %q of kind poll takes one secret (the endpoint's token, password or key)", s.Name)
				continue
			}
			s.Poll.Auth.Secret = value
		case source.KindSCIM, source.KindCSV:
			if len(value) < source.MinTokenLength {
				p.fail(n, "source %q, token %d: a bearer token must be at least %d characters", s.Name, i+1, source.MinTokenLength)
				continue
			}
			s.Tokens = append(s.Tokens, value)
		}
	}
}

func (p *parser) secrets(n *yaml.Node, source string) []string {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.fail(n, "secrets must be a non-empty list of {env: NAME} or {file: PATH}")
		return nil
	}
	var values []string
	for _, ref := range n.Content {
		m := p.mapping(ref, "a secret", "env", "file")
		if m == nil {
			continue
		}
		if len(m) != 1 {
			p.fail(ref, "a secret is either {env: NAME} or {file: PATH}")
			continue
		}
		if v, ok := m["env"]; ok {
			name, ok := p.scalar(v, "env")
			if !ok {
				continue
			}
			value, set := p.lookupEnv(name)
			if !set || strings.TrimSpace(value) == "" {
				p.fail(v, "environment variable %s (a secret of source %q) is not set", name, source)
				continue
			}
			values = append(values, strings.Fields(value)...)
		}
		if v, ok := m["file"]; ok {
			path, ok := p.scalar(v, "file")
			if !ok {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				// The error names the path only; a file's content never reaches an error.
				p.fail(v, "secret file of source %q: %v", source, errors.Unwrap(err))
				continue
			}
			if len(strings.Fields(string(data))) == 0 {
				p.fail(v, "secret file %s of source %q is empty", path, source)
			}
			values = append(values, strings.Fields(string(data))...)
		}
	}
	return values
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
