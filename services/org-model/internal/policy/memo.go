package policy

import (
	"encoding/binary"
	"math"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/reflect/protoreflect"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Memoised evaluation. A worker expression reads few inputs — a handful of worker fields, the
// worker's unit — and many workers share them: a company has a few hundred distinct names, a few
// locations, one unit for dozens of workers. An expression is a pure function of what it reads,
// so its result for one set of inputs holds for every worker with the same inputs. A full
// recompute of 100,000 workers evaluates each worker expression once per distinct input instead
// of once per worker (docs/BENCHMARKS.md, issue 16).

// memoInputs are what a worker expression reads, found in its checked AST at load.
type memoInputs struct {
	// fields are the paths of worker fields read, from the worker message down.
	fields [][]protoreflect.FieldDescriptor
	// unit says whether the expression reads unit, unit_path or unit_ids.
	unit                                                bool
	firstName, employmentType, employmentStatus, domain bool
	// set and slot say where a Memo keeps the expression's results: each memoised expression
	// of one parse has its own slot in that parse's set.
	set  *memoSet
	slot int
}

// memoSet numbers the memoised expressions of one parse.
type memoSet struct{ slots int }

// memoLimit bounds the results a Memo keeps per expression: an expression that reads
// something distinct for most workers (their id, their e-mail) stops being remembered once it has
// this many results, and is evaluated as without a Memo.
const memoLimit = 1 << 14

var workerDescriptor = (&orgsyncv1.Worker{}).ProtoReflect().Descriptor()

// memoInputsOf finds the inputs of a checked worker expression, or nil when the expression
// cannot be memoised: it has a comprehension, or reads the worker whole, a map or a list field,
// or a field CEL resolves in a way not followed here.
func memoInputsOf(ast *celast.AST, loops bool) *memoInputs {
	if loops {
		return nil
	}
	in := &memoInputs{}
	seen := map[string]bool{}
	ok := true
	for _, ident := range celast.MatchDescendants(celast.NavigateAST(ast), celast.KindMatcher(celast.IdentKind)) {
		switch name := ident.AsIdent(); name {
		case "unit", "unit_path", "unit_ids":
			in.unit = true
		case "first_name":
			in.firstName = true
		case "employment_type":
			in.employmentType = true
		case "employment_status":
			in.employmentStatus = true
		case "domain":
			in.domain = true
		case "worker":
			path, pathOK := workerFieldPath(ident)
			if !pathOK {
				ok = false
				break
			}
			key := ""
			for _, fd := range path {
				key += string(fd.Name()) + "."
			}
			if !seen[key] {
				seen[key] = true
				in.fields = append(in.fields, path)
			}
		default:
			// A qualified name the checker kept as one identifier ("worker.name") is not
			// followed; other identifiers are constants (enum values, type names).
			if strings.HasPrefix(name, "worker.") {
				ok = false
			}
		}
	}
	if !ok {
		return nil
	}
	return in
}

// workerFieldPath follows the selections above a "worker" identifier to the field read. The
// path stops at a scalar or at a message of scalars (a Date); anything else cannot be memoised.
func workerFieldPath(ident celast.NavigableExpr) ([]protoreflect.FieldDescriptor, bool) {
	var path []protoreflect.FieldDescriptor
	message := workerDescriptor
	for node := ident; ; {
		parent, ok := node.Parent()
		if !ok || parent.Kind() != celast.SelectKind || parent.AsSelect().Operand().ID() != node.ID() {
			break
		}
		if message == nil {
			return nil, false // a selection below a scalar
		}
		fd := message.Fields().ByName(protoreflect.Name(parent.AsSelect().FieldName()))
		if fd == nil || fd.IsList() || fd.IsMap() {
			return nil, false
		}
		path = append(path, fd)
		message = fd.Message()
		node = parent
	}
	if len(path) == 0 {
		return nil, false // the worker whole
	}
	if message != nil {
		for i := 0; i < message.Fields().Len(); i++ {
			if fd := message.Fields().Get(i); fd.IsList() || fd.IsMap() || fd.Message() != nil {
				return nil, false
			}
		}
	}
	return path, true
}

// Memo remembers the results of worker expressions by the inputs each reads (the worker fields,
// the derived variables, and the id of vars.Unit), so that workers who share them share one
// evaluation. Only successful results are kept; an error is evaluated again each time.
//
// The unit variables are keyed by the unit's id alone: the owner of a Memo gives WorkerVars the
// unit path and ids of that unit, and calls Reset whenever any org unit changes. A Memo is not
// safe for concurrent use; give each goroutine its own.
type Memo struct {
	// results are by the expressions' slots in set: a Memo given expressions of another parse
	// starts again.
	set     *memoSet
	results []map[string]ref.Val
	key     []byte
}

// NewMemo returns an empty Memo.
func NewMemo() *Memo { return &Memo{} }

// Reset forgets every result.
func (m *Memo) Reset() {
	if m != nil {
		clear(m.results)
	}
}

// lookup returns the remembered result of e for vars, and the key to remember a new one under.
func (m *Memo) lookup(e *Expr, vars *WorkerVars) (ref.Val, bool) {
	if m.set != e.memo.set {
		m.set, m.results = e.memo.set, make([]map[string]ref.Val, e.memo.set.slots)
	}
	m.key = e.memo.appendKey(m.key[:0], vars)
	val, ok := m.results[e.memo.slot][string(m.key)]
	return val, ok
}

// remember keeps out as e's result for the key of the last lookup.
func (m *Memo) remember(e *Expr, out ref.Val) {
	results := m.results[e.memo.slot]
	if results == nil {
		results = map[string]ref.Val{}
		m.results[e.memo.slot] = results
	}
	if len(results) < memoLimit {
		results[string(m.key)] = out
	}
}

// appendKey appends to key an encoding of the inputs' values in vars: lengths before strings, so
// that distinct inputs never give one key.
func (in *memoInputs) appendKey(key []byte, vars *WorkerVars) []byte {
	appendString := func(s string) {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	if in.unit {
		if vars.Unit == nil {
			key = append(key, 0)
		} else {
			key = append(key, 1)
			appendString(vars.Unit.GetOrgUnitId())
		}
	}
	if in.firstName {
		appendString(FirstName(vars.Worker.GetName()))
	}
	if in.employmentType {
		key = binary.AppendVarint(key, int64(vars.Worker.GetEmploymentType()))
	}
	if in.employmentStatus {
		key = binary.AppendVarint(key, int64(vars.Worker.GetEmploymentStatus()))
	}
	if in.domain {
		appendString(vars.Domain)
	}
	worker := vars.Worker
	if worker == nil {
		worker = &orgsyncv1.Worker{}
	}
	for _, path := range in.fields {
		message := worker.ProtoReflect()
		for _, fd := range path[:len(path)-1] {
			message = message.Get(fd).Message()
		}
		key = appendField(key, message, path[len(path)-1])
	}
	return key
}

// appendField appends whether a field is set and its value; a message (of scalars, see
// workerFieldPath) as each of its fields.
//
// Whether it is set is told from the value where the field has no presence of its own (a
// proto3 scalar is set when it is not zero) or is a message (set when valid), as Has would: Has
// costs more than Get, and keys are made for every worker and expression.
func appendField(key []byte, message protoreflect.Message, fd protoreflect.FieldDescriptor) []byte {
	var value protoreflect.Value
	switch {
	case fd.Message() != nil:
		if value = message.Get(fd); !value.Message().IsValid() {
			return append(key, 0)
		}
	case fd.HasPresence():
		if !message.Has(fd) {
			return append(key, 0)
		}
		value = message.Get(fd)
	default:
		if value = message.Get(fd); isZero(fd, value) {
			return append(key, 0)
		}
	}
	key = append(key, 1)
	if fd.Message() != nil {
		inner := value.Message()
		fields := fd.Message().Fields()
		for i := 0; i < fields.Len(); i++ {
			key = appendField(key, inner, fields.Get(i))
		}
		return key
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := value.String()
		key = binary.AppendUvarint(key, uint64(len(s)))
		return append(key, s...)
	case protoreflect.BytesKind:
		b := value.Bytes()
		key = binary.AppendUvarint(key, uint64(len(b)))
		return append(key, b...)
	case protoreflect.BoolKind:
		if value.Bool() {
			return append(key, 1)
		}
		return append(key, 0)
	case protoreflect.EnumKind:
		return binary.AppendVarint(key, int64(value.Enum()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return binary.AppendVarint(key, value.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return binary.AppendUvarint(key, value.Uint())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return binary.AppendUvarint(key, math.Float64bits(value.Float()))
	}
	return key
}

// isZero says whether value is the zero value of fd, a scalar without presence of its own: then
// Has reports the field unset.
func isZero(fd protoreflect.FieldDescriptor, value protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return value.String() == ""
	case protoreflect.BytesKind:
		return len(value.Bytes()) == 0
	case protoreflect.BoolKind:
		return !value.Bool()
	case protoreflect.EnumKind:
		return value.Enum() == 0
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return value.Int() == 0
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return value.Uint() == 0
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return math.Float64bits(value.Float()) == 0
	}
	return false
}
