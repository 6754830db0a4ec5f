package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/orgsync/orgsync/pkg/pii"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/identifier"
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
	// Context, when set, bounds every evaluation with these variables: a cancelled or expired
	// context stops the expression (a plan's deadline). With or without it an evaluation is
	// bounded by CostLimit and, with a comprehension, EvalTimeout.
	Context context.Context
	// Memo, when set, remembers results by the inputs an expression reads (see Memo), so that
	// workers with the same inputs share one evaluation.
	Memo *Memo
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

func (v *WorkerVars) evalContext() context.Context { return v.Context }

// UnitVars are the variables a unit group template sees.
type UnitVars struct {
	Unit     *orgsyncv1.OrgUnit
	UnitPath []string
	// Context is as in WorkerVars.
	Context context.Context
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

func (v *UnitVars) evalContext() context.Context { return v.Context }

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

// NormalizeDiacritics removes accents: "Zoë Ångström" → "Zoe Angstrom".
func NormalizeDiacritics(s string) string {
	folded, ok := identifier.StripMarks(s)
	if !ok {
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
		// lists.range allocates its whole list before the cost tracker sees it: keep it small.
		ext.Lists(ext.ListsMaxRangeSize(maxListRange)),
		cel.CostEstimatorOptions(customCallEstimates()...),
		cel.Function("normalizeDiacritics", cel.Overload("normalizeDiacritics_string", []*cel.Type{cel.StringType}, cel.StringType, str(NormalizeDiacritics))),
		cel.Function("stripSpaces", cel.Overload("stripSpaces_string", []*cel.Type{cel.StringType}, cel.StringType, str(func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return -1
				}
				return r
			}, s)
		}))),
		// escapeRDN escapes an attribute value for a DN (RFC 4514), so HR data cannot add RDNs.
		cel.Function("escapeRDN", cel.Overload("escapeRDN_string", []*cel.Type{cel.StringType}, cel.StringType, str(EscapeRDN))),
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
	At string
	// What names the rule, e.g. "mapping.ad.parentDistinguishedName".
	What    string
	program cel.Program
	// loops says the expression has a comprehension (map, filter, exists, all).
	loops bool
	// memo is what a worker expression reads, for a Memo; nil when it cannot be memoised.
	memo *memoInputs
}

// String evaluates an expression whose type is string.
func (e *Expr) String(vars interpreter.Activation) (string, error) {
	out, err := e.eval(vars)
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok {
		return "", fmt.Errorf("%s: %s: result is %s, not a string", e.At, e.What, out.Type())
	}
	return string(s), nil
}

// Bool evaluates an expression whose type is bool.
func (e *Expr) Bool(vars interpreter.Activation) (bool, error) {
	out, err := e.eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%s: %s: result is %s, not a bool", e.At, e.What, out.Type())
	}
	return bool(b), nil
}

// ErrCostLimit says an evaluation stopped because it cost more than CostLimit.
var ErrCostLimit = errors.New("CEL cost limit exceeded")

// contextual is implemented by the variables that can carry a context.
type contextual interface{ evalContext() context.Context }

// eval runs the program under the cost limit and, for an expression with comprehensions (the
// only place CEL checks for interruption), under EvalTimeout and the context vars carry. Errors
// name the rule; CEL's own message is scrubbed of personal data, as it may quote values.
func (e *Expr) eval(vars interpreter.Activation) (ref.Val, error) {
	var parent context.Context
	if c, ok := vars.(contextual); ok {
		parent = c.evalContext()
	}
	if parent != nil {
		if cause := context.Cause(parent); cause != nil {
			return nil, fmt.Errorf("%s: %s: not evaluated: %w", e.At, e.What, cause)
		}
	}
	if worker, ok := vars.(*WorkerVars); ok && worker.Memo != nil && e.memo != nil {
		if out, found := worker.Memo.lookup(e, worker); found {
			return out, nil
		}
		out, err := e.evalProgram(parent, vars)
		if err == nil {
			worker.Memo.remember(e, out)
		}
		return out, err
	}
	return e.evalProgram(parent, vars)
}

// evalProgram is eval without the memo.
func (e *Expr) evalProgram(parent context.Context, vars interpreter.Activation) (ref.Val, error) {
	var (
		out ref.Val
		err error
		ctx context.Context
	)
	if e.loops {
		if parent == nil {
			parent = context.Background()
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(parent, EvalTimeout, errEvalTimeout)
		defer cancel()
		out, _, err = e.program.ContextEval(ctx, vars)
	} else {
		// Without a comprehension an expression runs in time linear in its input: the cost limit
		// bounds it, and a context would only add work.
		out, _, err = e.program.Eval(vars)
	}
	if err == nil {
		return out, nil
	}
	var cancelled interpreter.EvalCancelledError
	switch {
	case errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded:
		err = fmt.Errorf("%s: %s: %w: evaluation stopped at a cost of %d (the limit per evaluation)", e.At, e.What, ErrCostLimit, CostLimit)
	case ctx != nil && ctx.Err() != nil:
		err = fmt.Errorf("%s: %s: evaluation stopped: %w", e.At, e.What, context.Cause(ctx))
	default:
		return nil, fmt.Errorf("%s: %s: %s", e.At, e.What, pii.Scrub(err.Error()))
	}
	if parent != nil && (errors.Is(err, ErrCostLimit) || errors.Is(err, ErrEvalTimeout)) {
		if stop, ok := parent.Value(stopKey{}).(context.CancelCauseFunc); ok {
			stop(err)
		}
	}
	return nil, err
}

type stopKey struct{}

// StopOnLimit returns a context for evaluations (WorkerVars.Context) that is cancelled, with the
// evaluation's error as its cause, the first time an evaluation under it exceeds the cost limit
// or EvalTimeout: one runaway expression ends a plan instead of running again for every worker.
// Calling cancel releases the context's resources.
func StopOnLimit(parent context.Context) (ctx context.Context, cancel context.CancelFunc) {
	ctx, stop := context.WithCancelCause(parent)
	return context.WithValue(ctx, stopKey{}, stop), func() { stop(nil) }
}

// ErrEvalTimeout says an evaluation ran longer than EvalTimeout.
var ErrEvalTimeout = errors.New("CEL evaluation timeout")

var errEvalTimeout = fmt.Errorf("%w: stopped after %s (the limit per evaluation)", ErrEvalTimeout, EvalTimeout)

// EscapeRDN escapes s for use as an attribute value in a distinguished name (RFC 4514 2.4):
// a backslash before " + , ; < > \ and =, before a leading space or '#' and a trailing space,
// and NUL as \00. "Smith, Jane" becomes "Smith\, Jane", so a policy that builds a DN from HR data
// ("OU=" + escapeRDN(unit.name) + ",OU=Staff,…") cannot be made to add or change RDNs.
func EscapeRDN(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i, r := range s {
		switch {
		case r == 0:
			b.WriteString(`\00`)
			continue
		case strings.ContainsRune(`"+,;<>\=`, r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(s)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Costs: CEL counts about one unit per operation and one per ten characters a string function
// reads. The built-in defaults cost under a hundred; a runaway (nested comprehensions over a long
// list) reaches the limit within a few milliseconds.
const (
	// CostLimit is the most one evaluation of one policy expression may cost.
	CostLimit = 1_000_000
	// EvalTimeout bounds one evaluation of an expression with comprehensions. The cost limit
	// alone does not bound time: cel-go's cost tracking makes a map over n items take time in n².
	EvalTimeout = time.Second
	// interruptEvery is how many comprehension iterations pass between checks of the context.
	interruptEvery = 100
	// maxListRange caps lists.range(n).
	maxListRange = 10_000
)

// Sizes the static estimate assumes for values CEL cannot see at load: generous bounds of HR
// data. A value larger at run time is still stopped by CostLimit.
const (
	maxStringSize = 1024
	maxListSize   = 100
	maxMapSize    = 100
)

// sizeEstimator gives the static estimate the sizes of variables, fields and custom functions'
// results, which CEL would otherwise take as unbounded.
type sizeEstimator struct{}

var _ checker.CostEstimator = sizeEstimator{}

// EstimateSize implements checker.CostEstimator.
func (sizeEstimator) EstimateSize(element checker.AstNode) *checker.SizeEstimate {
	var size uint64
	switch element.Type().Kind() {
	case types.StringKind, types.BytesKind:
		size = maxStringSize
	case types.ListKind:
		size = maxListSize
	case types.MapKind:
		size = maxMapSize
	default:
		return nil
	}
	return &checker.SizeEstimate{Min: 0, Max: size}
}

// EstimateCallCost implements checker.CostEstimator.
func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// customOverloads are orgsync's own functions that read their string or list arguments whole.
var customOverloads = []string{
	"normalizeDiacritics_string", "stripSpaces_string", "mailSafe_string", "toLower_string", "toUpper_string",
	"properCase_string", "trimDots_string", "escapeRDN_string", "left_string_int", "join_string_list",
	"coalesce_list", "switch_string_string_map", "formatDate_date_string",
}

// customCallEstimates estimate orgsync's functions as reading every argument once, with results
// bounded by maxStringSize (escapeRDN and normalizeDiacritics may grow a string a little).
func customCallEstimates() []checker.CostOption {
	opts := make([]checker.CostOption, len(customOverloads))
	for i, overload := range customOverloads {
		opts[i] = checker.OverloadCostEstimate(overload, func(estimator checker.CostEstimator, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
			cost := checker.FixedCostEstimate(1)
			for _, arg := range args {
				size := checker.SizeEstimate{Min: 0, Max: maxStringSize}
				if s := estimator.EstimateSize(arg); s != nil {
					size = *s
				}
				cost = cost.Add(size.MultiplyByCostFactor(0.1))
			}
			result := checker.SizeEstimate{Min: 0, Max: 2 * maxStringSize}
			return &checker.CallEstimate{CostEstimate: cost, ResultSize: &result}
		})
	}
	return opts
}

// actualCosts charges orgsync's functions at run time by what they read, as CEL charges its own
// string functions, so a long HR value counts.
type actualCosts struct{}

var customOverloadSet = func() map[string]bool {
	set := make(map[string]bool, len(customOverloads))
	for _, o := range customOverloads {
		set[o] = true
	}
	return set
}()

// CallCost implements interpreter.ActualCostEstimator.
func (actualCosts) CallCost(_, overloadID string, args []ref.Val, _ ref.Val) *uint64 {
	if !customOverloadSet[overloadID] {
		return nil
	}
	cost := uint64(1)
	for _, arg := range args {
		switch v := arg.(type) {
		case types.String:
			cost += uint64(len(v)) / 10
		case traits.Sizer:
			if n, ok := v.Size().(types.Int); ok && n > 0 {
				cost += uint64(n)
			}
		}
	}
	return &cost
}
