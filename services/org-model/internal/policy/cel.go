package policy

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// WorkerVars are the variables a worker expression (scope, mapping, identifiers, rule groups)
// sees. It is an interpreter.Activation, so evaluating allocates no map.
type WorkerVars struct {
	// Worker is the HR record.
	Worker *orgsyncv1.Worker
	// Unit is the worker's org unit; empty when HR has not described it yet.
	Unit *orgsyncv1.OrgUnit
	// UnitPath holds the names of the unit and its ancestors, root first.
	UnitPath []string
	// UnitIDs holds the ids of the unit and its ancestors, root first.
	UnitIDs []string
	// Domain is the policy's first UPN domain.
	Domain string
}

var _ interpreter.Activation = (*WorkerVars)(nil)

// ResolveName implements interpreter.Activation.
func (v *WorkerVars) ResolveName(name string) (any, bool) {
	switch name {
	case "worker":
		if v.Worker == nil {
			return &orgsyncv1.Worker{}, true
		}
		return v.Worker, true
	case "unit":
		if v.Unit == nil {
			return &orgsyncv1.OrgUnit{}, true
		}
		return v.Unit, true
	case "unit_path":
		return orEmpty(v.UnitPath), true
	case "unit_ids":
		return orEmpty(v.UnitIDs), true
	case "first_name":
		return FirstName(v.Worker.GetName()), true
	case "employment_type":
		return EmploymentTypeName(v.Worker.GetEmploymentType()), true
	case "employment_status":
		return strings.ToLower(strings.TrimPrefix(v.Worker.GetEmploymentStatus().String(), "EMPLOYMENT_STATUS_")), true
	case "domain":
		return v.Domain, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (v *WorkerVars) Parent() interpreter.Activation { return nil }

// UnitVars are the variables a unit group template sees.
type UnitVars struct {
	Unit     *orgsyncv1.OrgUnit
	UnitPath []string
}

var _ interpreter.Activation = (*UnitVars)(nil)

// ResolveName implements interpreter.Activation.
func (v *UnitVars) ResolveName(name string) (any, bool) {
	switch name {
	case "unit":
		if v.Unit == nil {
			return &orgsyncv1.OrgUnit{}, true
		}
		return v.Unit, true
	case "unit_path":
		return orEmpty(v.UnitPath), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (v *UnitVars) Parent() interpreter.Activation { return nil }

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// FirstName is the name a worker goes by: the preferred name, else the given name.
func FirstName(n *orgsyncv1.PersonName) string {
	if n.GetPreferredName() != "" {
		return n.GetPreferredName()
	}
	return n.GetGivenName()
}

// EmploymentTypeName is the lower-case name of an employment type, "employee", "contractor", ….
func EmploymentTypeName(t orgsyncv1.EmploymentType) string {
	if t == orgsyncv1.EmploymentType_EMPLOYMENT_TYPE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "EMPLOYMENT_TYPE_"))
}

var stripMarks = transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)

// NormalizeDiacritics removes accents: "Zoë Ångström" → "Zoe Angstrom".
func NormalizeDiacritics(s string) string {
	folded, _, err := transform.String(stripMarks, s)
	if err != nil {
		return s
	}
	// Letters that do not decompose into a base letter and a mark.
	return diacriticsReplacer.Replace(folded)
}

var diacriticsReplacer = strings.NewReplacer("ß", "ss", "ø", "o", "Ø", "O", "æ", "ae", "Æ", "AE", "œ", "oe", "Œ", "OE", "ł", "l", "Ł", "L", "đ", "d", "Đ", "D", "þ", "th", "Þ", "TH")

// MailSafe lower-cases s, removes accents, and keeps only what a UPN's or mailNickname's local
// part allows of a name: "Zoë O'Brien" → "zoeobrien".
func MailSafe(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(NormalizeDiacritics(s)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// newEnv is the CEL environment of every policy expression. vars says which variables exist.
func newEnv(vars ...cel.EnvOption) (*cel.Env, error) {
	str := func(fn func(string) string) cel.OverloadOpt {
		return cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(fn(string(v.(types.String)))) })
	}
	opts := []cel.EnvOption{
		cel.Types(&orgsyncv1.Worker{}, &orgsyncv1.OrgUnit{}, &orgsyncv1.PersonName{}, &orgsyncv1.Date{}),
		ext.Strings(),
		ext.Lists(),
		cel.Function("normalizeDiacritics", cel.Overload("normalizeDiacritics_string", []*cel.Type{cel.StringType}, cel.StringType, str(NormalizeDiacritics))),
		cel.Function("stripSpaces", cel.Overload("stripSpaces_string", []*cel.Type{cel.StringType}, cel.StringType, str(func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return -1
				}
				return r
			}, s)
		}))),
		cel.Function("mailSafe", cel.Overload("mailSafe_string", []*cel.Type{cel.StringType}, cel.StringType, str(MailSafe))),
		cel.Function("toLower", cel.Overload("toLower_string", []*cel.Type{cel.StringType}, cel.StringType, str(strings.ToLower))),
		cel.Function("toUpper", cel.Overload("toUpper_string", []*cel.Type{cel.StringType}, cel.StringType, str(strings.ToUpper))),
		cel.Function("properCase", cel.Overload("properCase_string", []*cel.Type{cel.StringType}, cel.StringType, str(properCase))),
		cel.Function("trimDots", cel.Overload("trimDots_string", []*cel.Type{cel.StringType}, cel.StringType, str(func(s string) string { return strings.Trim(s, ".") }))),
		cel.Function("left", cel.Overload("left_string_int", []*cel.Type{cel.StringType, cel.IntType}, cel.StringType,
			cel.BinaryBinding(func(s, n ref.Val) ref.Val {
				r := []rune(string(s.(types.String)))
				return types.String(string(r[:min(len(r), max(0, int(n.(types.Int))))]))
			}))),
		// join(separator, values) joins the non-empty values, as Entra's Join does.
		cel.Function("join", cel.Overload("join_string_list", []*cel.Type{cel.StringType, cel.ListType(cel.StringType)}, cel.StringType,
			cel.BinaryBinding(func(sep, list ref.Val) ref.Val {
				var parts []string
				for _, s := range stringList(list) {
					if s != "" {
						parts = append(parts, s)
					}
				}
				return types.String(strings.Join(parts, string(sep.(types.String))))
			}))),
		// coalesce(values) is the first non-empty value, or "".
		cel.Function("coalesce", cel.Overload("coalesce_list", []*cel.Type{cel.ListType(cel.StringType)}, cel.StringType,
			cel.UnaryBinding(func(list ref.Val) ref.Val {
				for _, s := range stringList(list) {
					if s != "" {
						return types.String(s)
					}
				}
				return types.String("")
			}))),
		// switch(value, default, cases) maps value through cases, as Entra's Switch does.
		cel.Function("switch", cel.Overload("switch_string_string_map", []*cel.Type{cel.StringType, cel.StringType, cel.MapType(cel.StringType, cel.StringType)}, cel.StringType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				cases := args[2].(traits.Mapper)
				if v, found := cases.Find(args[0]); found {
					return v
				}
				return args[1]
			}))),
		// formatDate(date, layout) formats an HR date with .NET-style tokens (yyyy, MM, dd), "" when unset.
		cel.Function("formatDate", cel.Overload("formatDate_date_string", []*cel.Type{cel.ObjectType("orgsync.v1.Date"), cel.StringType}, cel.StringType,
			cel.BinaryBinding(func(d, layout ref.Val) ref.Val {
				date, ok := d.Value().(*orgsyncv1.Date)
				if !ok || date.GetYear() == 0 {
					return types.String("")
				}
				t := time.Date(int(date.GetYear()), time.Month(date.GetMonth()), int(date.GetDay()), 0, 0, 0, 0, time.UTC)
				return types.String(t.Format(dotnetLayout.Replace(string(layout.(types.String)))))
			}))),
	}
	return cel.NewEnv(append(opts, vars...)...)
}

var dotnetLayout = strings.NewReplacer("yyyy", "2006", "yy", "06", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05")

func stringList(v ref.Val) []string {
	lister, ok := v.(traits.Lister)
	if !ok {
		return nil
	}
	var out []string
	for it := lister.Iterator(); it.HasNext() == types.True; {
		if s, ok := it.Next().(types.String); ok {
			out = append(out, string(s))
		}
	}
	return out
}

func properCase(s string) string {
	words := strings.Fields(strings.ToLower(s))
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

var workerVarDecls = []cel.EnvOption{
	cel.Variable("worker", cel.ObjectType("orgsync.v1.Worker")),
	cel.Variable("unit", cel.ObjectType("orgsync.v1.OrgUnit")),
	cel.Variable("unit_path", cel.ListType(cel.StringType)),
	cel.Variable("unit_ids", cel.ListType(cel.StringType)),
	cel.Variable("first_name", cel.StringType),
	cel.Variable("employment_type", cel.StringType),
	cel.Variable("employment_status", cel.StringType),
	cel.Variable("domain", cel.StringType),
}

var unitVarDecls = []cel.EnvOption{
	cel.Variable("unit", cel.ObjectType("orgsync.v1.OrgUnit")),
	cel.Variable("unit_path", cel.ListType(cel.StringType)),
}

// Expr is one compiled CEL expression of the policy file. It is safe for concurrent use.
type Expr struct {
	// Source is the expression as written.
	Source string
	// At is where it was written, "file:line".
	At      string
	program cel.Program
}

// String evaluates an expression whose type is string.
func (e *Expr) String(vars interpreter.Activation) (string, error) {
	out, _, err := e.program.Eval(vars)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", e.At, e.Source, err)
	}
	s, ok := out.(types.String)
	if !ok {
		return "", fmt.Errorf("%s: %s: result is %s, not a string", e.At, e.Source, out.Type())
	}
	return string(s), nil
}

// Bool evaluates an expression whose type is bool.
func (e *Expr) Bool(vars interpreter.Activation) (bool, error) {
	out, _, err := e.program.Eval(vars)
	if err != nil {
		return false, fmt.Errorf("%s: %s: %w", e.At, e.Source, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%s: %s: result is %s, not a bool", e.At, e.Source, out.Type())
	}
	return bool(b), nil
}
