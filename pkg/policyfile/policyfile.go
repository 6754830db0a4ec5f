// Package policyfile is the one way orgsync's services read their part of the shared policy file
// (ORGSYNC_CONFIG) with positions: the YAML is decoded into nodes that know their line, and every
// problem of the file is collected as "file:line: reason" — all of them, in line order, not only
// the first — so that one start shows the operator everything to fix.
//
// Each service parses only its own concern (org-model the policy, hr-ingest the "sources"
// list); this package holds only what both parsers need: decoding, the error types, the problem
// list, and reading mappings and single values.
package policyfile

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem with the policy file, at a line.
type Error struct {
	File   string
	Line   int
	Reason string
}

// Error is "file:line: reason".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Errors is every problem found in a policy file, in line order. errors.As finds each *Error in it.
type Errors []*Error

// Error is one line per problem: file:line: reason.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As the problems one by one.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, err := range e {
		out[i] = err
	}
	return out
}

// Decode parses data as YAML and returns the root node of its document; an empty file is an
// empty mapping at line 1. A YAML syntax error is returned as an *Error at the line YAML names
// (the file cannot be read further, so it is the only problem reported).
func Decode(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		reason := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 1
		if rest, ok := strings.CutPrefix(reason, "line "); ok {
			if number, after, ok := strings.Cut(rest, ": "); ok {
				if n, convErr := strconv.Atoi(number); convErr == nil {
					line, reason = n, after
				}
			}
		}
		return nil, &Error{File: file, Line: line, Reason: reason}
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Line: 1}, nil
	}
	return doc.Content[0], nil
}

// Problems collects the problems of one file. A parser records a problem and goes on with the
// next independent part of the file, so a problem in one part does not hide the next one's.
// It is not safe for concurrent use (one parse is one goroutine).
type Problems struct {
	// File names the file in every problem.
	File string
	list Errors
}

// At returns the problem at n's line, without recording it (for a caller that returns it).
func (p *Problems) At(n *yaml.Node, format string, args ...any) *Error {
	return &Error{File: p.File, Line: n.Line, Reason: fmt.Sprintf(format, args...)}
}

// Add records the problem at n's line.
func (p *Problems) Add(n *yaml.Node, format string, args ...any) {
	p.list = append(p.list, p.At(n, format, args...))
}

// Keep records err when there is one and says whether there was none. An error that is not an
// *Error (nor holds one) is recorded at line 1.
func (p *Problems) Keep(err error) bool {
	if err == nil {
		return true
	}
	var at *Error
	if !errors.As(err, &at) {
		at = &Error{File: p.File, Line: 1, Reason: err.Error()}
	}
	p.list = append(p.list, at)
	return false
}

// Err returns every problem recorded, in line order (as found within a line), or nil.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	sorted := slices.Clone(p.list)
	slices.SortStableFunc(sorted, func(a, b *Error) int { return a.Line - b.Line })
	return sorted
}

// Fields reads n as a mapping and returns its values by key; an empty value (null) is an empty
// mapping. With allowed keys, each other key is recorded as a problem and left out; a key given
// twice is recorded too. A node that is not a mapping is returned as the error (not recorded),
// since nothing inside it can be read.
func (p *Problems) Fields(n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return map[string]*yaml.Node{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.At(n, "%s must be a mapping", what)
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if allowed != nil && !slices.Contains(allowed, key.Value) {
			p.Add(key, "unknown key %q in %s (allowed: %s)", key.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[key.Value]; dup {
			p.Add(key, "duplicate key %q in %s", key.Value, what)
			continue
		}
		out[key.Value] = value
	}
	return out, nil
}

// Scalar reads n as a single value; a list or a mapping is returned as the error (not recorded).
func (p *Problems) Scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.At(n, "%s must be a single value", what)
	}
	return n.Value, nil
}
