package policy

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// pollKeys are the keys of a poll source's "poll" mapping (see source.Poll):
//
//	poll:
//	  preset: afas | workday          # a vendor's defaults; every key below overrides them
//	  url: https://…                  # the endpoint
//	  format: json | csv
//	  records: rows                   # the JSON member holding the records
//	  auth: {scheme: bearer | basic | header | afas, user: ISU@tenant, header: X-API-Key}
//	  query: {name: value}            # sent with every request
//	  fullQuery: {name: value}        # sent with a full pull only
//	  changedSince: {param: filtervalues, format: 2006-01-02T15:04:05, query: {…}, overlap: 1m}
//	  paging: {mode: offset | next | none, offsetParam: skip, limitParam: take, size: 100, next: "@odata.nextLink"}
//	  fields: {workerId: Medewerker, …}   # worker field → record field
//	  modifiedField: Gewijzigd
//	  interval: 1m
//	  fullSyncEvery: 24h
//	  timeout: 60s
//	  maxRecords: 500000
var pollKeys = []string{"preset", "url", "format", "records", "auth", "query", "fullQuery", "changedSince", "paging",
	"fields", "modifiedField", "interval", "fullSyncEvery", "timeout", "maxRecords"}

// poll reads a poll source's settings into s.Poll (its secret was read from "secrets").
func (p *parser) poll(n *yaml.Node, s *source.Config) {
	m := p.mapping(n, "poll", pollKeys...)
	if m == nil {
		return
	}
	c := &s.Poll
	text := func(key string, into *string) {
		if v, ok := m[key]; ok {
			*into, _ = p.scalar(v, "poll."+key)
		}
	}
	text("preset", &c.Preset)
	text("url", &c.URL)
	text("format", &c.Format)
	text("records", &c.Records)
	text("modifiedField", &c.ModifiedField)
	if v, ok := m["auth"]; ok {
		if a := p.mapping(v, "poll.auth", "scheme", "user", "header"); a != nil {
			for key, into := range map[string]*string{"scheme": &c.Auth.Scheme, "user": &c.Auth.User, "header": &c.Auth.Header} {
				if v, ok := a[key]; ok {
					*into, _ = p.scalar(v, "poll.auth."+key)
				}
			}
		}
	}
	c.Query = p.stringMap(m["query"], "poll.query")
	c.FullQuery = p.stringMap(m["fullQuery"], "poll.fullQuery")
	if v, ok := m["changedSince"]; ok {
		if cs := p.mapping(v, "poll.changedSince", "param", "format", "query", "overlap"); cs != nil {
			if v, ok := cs["param"]; ok {
				c.ChangedSince.Param, _ = p.scalar(v, "poll.changedSince.param")
			}
			if v, ok := cs["format"]; ok {
				c.ChangedSince.Format, _ = p.scalar(v, "poll.changedSince.format")
			}
			c.ChangedSince.Query = p.stringMap(cs["query"], "poll.changedSince.query")
			c.ChangedSince.Overlap = p.duration(cs["overlap"], "poll.changedSince.overlap")
		}
	}
	if v, ok := m["paging"]; ok {
		if pg := p.mapping(v, "poll.paging", "mode", "offsetParam", "limitParam", "size", "next"); pg != nil {
			for key, into := range map[string]*string{"mode": &c.Paging.Mode, "offsetParam": &c.Paging.OffsetParam,
				"limitParam": &c.Paging.LimitParam, "next": &c.Paging.Next} {
				if v, ok := pg[key]; ok {
					*into, _ = p.scalar(v, "poll.paging."+key)
				}
			}
			if v, ok := pg["size"]; ok {
				c.Paging.Size = int(p.positive(v, "poll.paging.size"))
			}
		}
	}
	if v, ok := m["fields"]; !ok {
		p.fail(n, "source %q needs poll.fields (worker field → the record's field, at least workerId and familyName)", s.Name)
	} else {
		c.Fields = p.stringMap(v, "poll.fields")
		if err := snapshot.CheckMapping(c.Fields); err != nil {
			p.fail(v, "poll.fields: %v", err)
		}
	}
	c.Interval = p.duration(m["interval"], "poll.interval")
	c.FullSyncEvery = p.duration(m["fullSyncEvery"], "poll.fullSyncEvery")
	c.Timeout = p.duration(m["timeout"], "poll.timeout")
	if v, ok := m["maxRecords"]; ok {
		c.MaxRecords = int(p.positive(v, "poll.maxRecords"))
	}
}

// stringMap reads a mapping of text values; nil when n is nil.
func (p *parser) stringMap(n *yaml.Node, what string) map[string]string {
	if n == nil {
		return nil
	}
	m := p.mapping(n, what)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if text, ok := p.scalar(v, what+"."+k); ok {
			out[k] = text
		}
	}
	return out
}

// duration reads a positive duration such as 30s or 24h; 0 when n is nil.
func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	if n == nil {
		return 0
	}
	text, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 {
		p.fail(n, "%s %q is not a positive duration such as 30s, 1m or 24h", what, text)
		return 0
	}
	return d
}
