package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Hierarchy says which worker attributes of one HR source form its org tree, for sources that
// send no org units of their own (SCIM, BambooHR, CSV). It is the "hierarchy" key of a source in
// the shared file's "sources" list, either a list of levels or a mapping:
//
//	sources:
//	  - name: entra-scim
//	    hierarchy: [company, division, department]
//	  - name: bamboo
//	    hierarchy:
//	      levels: [division, department]
//	      root: company-root           # an HR org unit the first level hangs under
//	      managerAttribute: custom.isUnitLead
//
// A worker's path is the values of the levels in order, up to the first empty one; each prefix of
// the path is a unit, named by its last value, whose parent is the prefix one shorter (the first
// level's parent is Root, or none). A worker is in the unit of their whole path. A worker whose
// record carries managerAttribute with the value "true" (or "yes", "1") leads the unit they are in;
// when several do, the lowest worker id leads.
type Hierarchy struct {
	// Source is the HR source's name.
	Source string
	// Levels are the attribute names, top level first.
	Levels []string
	// Root is the org unit the first level's units hang under; empty: they are roots.
	Root string
	// ManagerAttribute names the attribute that marks a unit's lead; empty: derived units have no
	// manager.
	ManagerAttribute string
}

// hierarchyFields are the worker fields a level may name; any other level is "custom.<name>", a
// custom attribute the source keeps.
var hierarchyFields = map[string]func(*orgsyncv1.Worker) string{
	"company":    (*orgsyncv1.Worker).GetCompany,
	"division":   (*orgsyncv1.Worker).GetDivision,
	"department": (*orgsyncv1.Worker).GetDepartment,
	"costCenter": (*orgsyncv1.Worker).GetCostCenter,
	"location":   (*orgsyncv1.Worker).GetLocation,
	"jobTitle":   (*orgsyncv1.Worker).GetJobTitle,
}

const customPrefix = "custom."

func attributeValue(w *orgsyncv1.Worker, name string) string {
	if get, ok := hierarchyFields[name]; ok {
		return strings.TrimSpace(get(w))
	}
	return strings.TrimSpace(w.GetCustomAttributes()[strings.TrimPrefix(name, customPrefix)])
}

func validAttribute(name string) bool {
	if _, ok := hierarchyFields[name]; ok {
		return true
	}
	custom, ok := strings.CutPrefix(name, customPrefix)
	return ok && custom != ""
}

func knownAttributes() string {
	names := make([]string, 0, len(hierarchyFields)+1)
	for name := range hierarchyFields {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(append(names, customPrefix+"<attribute>"), ", ")
}

// Path is the values of a worker's hierarchy levels, top first, up to the first empty one.
func (h *Hierarchy) Path(w *orgsyncv1.Worker) []string {
	path := make([]string, 0, len(h.Levels))
	for _, level := range h.Levels {
		value := attributeValue(w, level)
		if value == "" {
			break
		}
		path = append(path, value)
	}
	return path
}

// Leads says whether a worker's record marks them as the lead of their unit.
func (h *Hierarchy) Leads(w *orgsyncv1.Worker) bool {
	if h.ManagerAttribute == "" {
		return false
	}
	switch strings.ToLower(attributeValue(w, h.ManagerAttribute)) {
	case "true", "yes", "1":
		return true
	}
	return false
}

// UnitID is the stable id of the unit at path in source: a readable part (the source and the last
// value, letters, digits and dashes only) and a hash of the source and the whole path, so that ids
// are safe in subjects and mail nicknames, short enough for them, and distinct for distinct paths.
func UnitID(source string, path []string) string {
	sum := sha256.New()
	sum.Write([]byte(source))
	for _, value := range path {
		sum.Write([]byte{0})
		sum.Write([]byte(value))
	}
	readable := cutBytes(MailSafe(source), 16)
	if len(path) > 0 {
		if leaf := cutBytes(MailSafe(path[len(path)-1]), 20); leaf != "" {
			readable += "-" + leaf
		}
	}
	return strings.Trim(readable, "-") + "-" + hex.EncodeToString(sum.Sum(nil))[:10]
}

// cutBytes cuts an ASCII string to n bytes.
func cutBytes(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// HierarchyDigest identifies the hierarchy settings of every source: units derived under one digest may
// differ from those derived under another.
func HierarchyDigest(hierarchies map[string]*Hierarchy) string {
	names := make([]string, 0, len(hierarchies))
	for name := range hierarchies {
		names = append(names, name)
	}
	sort.Strings(names)
	sum := sha256.New()
	for _, name := range names {
		h := hierarchies[name]
		sum.Write([]byte(name + "\x00" + strings.Join(h.Levels, "\x01") + "\x00" + h.Root + "\x00" + h.ManagerAttribute + "\x00\x00"))
	}
	return hex.EncodeToString(sum.Sum(nil))[:16]
}

// sources reads the org tree settings of the shared "sources" list. The list is hr-ingest's, which
// checks every other key; here only each source's name and hierarchy are read.
func (p *parser) sources(n *yaml.Node, pol *Policy) error {
	pol.Hierarchies = map[string]*Hierarchy{}
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return p.fail(n, "sources must be a list")
	}
	// Each source stands alone: a problem in one does not hide the next one's. Two sources of
	// one name are hr-ingest's to report; here only two hierarchies for one name are, since
	// org-model could not tell which one to use.
	hierarchyLines := map[string]int{}
	for _, item := range n.Content {
		p.keep(p.source(item, pol, hierarchyLines))
	}
	return nil
}

func (p *parser) source(item *yaml.Node, pol *Policy, hierarchyLines map[string]int) error {
	if item.Kind != yaml.MappingNode {
		return p.fail(item, "a source must be a mapping")
	}
	f, err := p.fields(item, "a source")
	if err != nil {
		return err
	}
	hn, ok := f["hierarchy"]
	if !ok {
		return nil
	}
	nameNode, ok := f["name"]
	if !ok {
		return p.fail(item, "a source with a hierarchy needs a name")
	}
	name, err := p.scalar(nameNode, "a source's name")
	if err != nil {
		return err
	}
	if line, twice := hierarchyLines[name]; twice {
		return p.fail(hn, "source %q has a hierarchy already, on line %d", name, line)
	}
	hierarchyLines[name] = hn.Line
	h, err := p.hierarchy(hn, name)
	if err != nil {
		return err
	}
	pol.Hierarchies[name] = h
	return nil
}

func (p *parser) hierarchy(n *yaml.Node, source string) (*Hierarchy, error) {
	what := "sources[" + source + "].hierarchy"
	h := &Hierarchy{Source: source}
	levels := n
	if n.Kind == yaml.MappingNode {
		f, err := p.fields(n, what, "levels", "root", "managerAttribute")
		if err != nil {
			return nil, err
		}
		if levels = f["levels"]; levels == nil {
			return nil, p.fail(n, "%s needs levels, e.g. [company, division, department]", what)
		}
		if v, ok := f["root"]; ok {
			if h.Root, err = p.scalar(v, what+".root"); err != nil {
				return nil, err
			}
		}
		if v, ok := f["managerAttribute"]; ok {
			if h.ManagerAttribute, err = p.scalar(v, what+".managerAttribute"); err != nil {
				return nil, err
			}
			if !validAttribute(h.ManagerAttribute) {
				return nil, p.fail(v, "%s.managerAttribute %q is not a worker attribute (known: %s)", what, h.ManagerAttribute, knownAttributes())
			}
		}
	}
	items, err := p.stringList(levels, what)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.fail(levels, "%s needs at least one level", what)
	}
	seen := map[string]bool{}
	for _, item := range items {
		if !validAttribute(item.Value) {
			return nil, p.fail(item, "%s: %q is not a worker attribute (known: %s)", what, item.Value, knownAttributes())
		}
		if seen[item.Value] {
			return nil, p.fail(item, "%s names %q twice", what, item.Value)
		}
		seen[item.Value] = true
		h.Levels = append(h.Levels, item.Value)
	}
	return h, nil
}
