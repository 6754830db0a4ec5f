package policy

import (
	"gopkg.in/yaml.v3"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// writeBack reads what hr-ingest writes back to the source:
// {attributes: [upn, mail], from: entra|ad, usernameField: NAME,
// webhook: {url: URL, secret: {env: NAME} | {file: PATH}}}.
func (p *parser) writeBack(n *yaml.Node, s *source.Config) {
	m := p.mapping(n, "writeBack", "attributes", "from", "usernameField", "webhook")
	if m == nil {
		return
	}
	if v, ok := m["attributes"]; !ok {
		p.fail(n, "writeBack of source %q needs attributes (a list of upn, mail)", s.Name)
	} else if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		p.fail(v, "writeBack.attributes must be a non-empty list of upn, mail")
	} else {
		for _, item := range v.Content {
			if name, ok := p.scalar(item, "writeBack.attributes"); ok {
				attribute, err := source.ParseAttribute(name)
				if err != nil {
					p.fail(item, "%v", err)
					continue
				}
				s.WriteBack.Attributes = append(s.WriteBack.Attributes, attribute)
			}
		}
	}
	if v, ok := m["from"]; ok {
		if from, ok := p.scalar(v, "writeBack.from"); ok {
			if from != source.FromEntra && from != source.FromAD {
				p.fail(v, "writeBack.from %q is not entra or ad", from)
			}
			s.WriteBack.From = from
		}
	}
	if v, ok := m["usernameField"]; ok {
		s.WriteBack.UsernameField, _ = p.scalar(v, "writeBack.usernameField")
	}
	if v, ok := m["webhook"]; ok {
		hook := p.mapping(v, "writeBack.webhook", "url", "secret")
		if hook == nil {
			return
		}
		if u, ok := hook["url"]; !ok {
			p.fail(v, "writeBack.webhook of source %q needs url", s.Name)
		} else {
			s.WriteBack.Callback.URL, _ = p.scalar(u, "writeBack.webhook.url")
		}
		secret, ok := hook["secret"]
		if !ok {
			p.fail(v, "writeBack.webhook of source %q needs secret ({env: NAME} or {file: PATH}, whsec_…)", s.Name)
			return
		}
		values := p.secrets(&yaml.Node{Kind: yaml.SequenceNode, Line: secret.Line, Content: []*yaml.Node{secret}}, s.Name)
		if len(values) != 1 {
			if len(values) > 1 {
				p.fail(secret, "writeBack.webhook.secret of source %q must be one value", s.Name)
			}
			return
		}
		key, err := webhook.ParseSecret(values[0])
		if err != nil {
			p.fail(secret, "writeBack.webhook.secret of source %q: %v", s.Name, err)
			return
		}
		s.WriteBack.Callback.Secret = key
	}
}
