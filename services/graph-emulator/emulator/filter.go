package emulator

import (
	"fmt"
	"strings"
)

// filterExpr is a parsed $filter: a conjunction of comparisons, which is all the emulator
// evaluates. Parentheses are accepted and flattened, since and is associative.
type filterExpr struct {
	clauses []comparison
}

// comparison is "property eq literal", "property in (literal, …)" or
// "startsWith(property, 'prefix')"; property may be a path into a complex property, as in
// employeeOrgData/costCenter.
type comparison struct {
	property []string
	op       comparisonOp
	value    literal   // eq, startsWith
	values   []literal // in
}

type comparisonOp int

const (
	eqOp comparisonOp = iota
	inOp
	startsWithOp
)

type literalKind int

const (
	stringLiteral literalKind = iota + 1
	booleanLiteral
	nullLiteral
)

type literal struct {
	kind    literalKind
	text    string
	boolean bool
}

// filterError says which part of a $filter the emulator did not understand.
type filterError struct {
	// offset is the byte offset of the problem in the $filter value.
	offset  int
	problem string
}

func (e *filterError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.problem, e.offset)
}

// maxFilterNesting bounds parenthesis depth so that hostile input cannot exhaust the stack.
const maxFilterNesting = 32

// parseFilter parses a $filter value of the form
//
//	clause { and clause }
//	clause = property eq literal | property in ( literal { , literal } )
//	       | startsWith ( property , 'text' ) | ( clause { and clause } )
//	literal = 'text' (with '' for a quote) | true | false | null
//
// Keywords are case-insensitive, as in Graph. Anything else (or, ne, not, lambda operators, other
// functions, numbers) is reported as a *filterError naming it.
func parseFilter(input string) (filterExpr, error) {
	tokens, err := tokenizeFilter(input)
	if err != nil {
		return filterExpr{}, err
	}
	parser := filterParser{input: input, tokens: tokens}
	clauses, err := parser.parseConjunction(0)
	if err != nil {
		return filterExpr{}, err
	}
	if next := parser.peek(); next.kind != endToken {
		return filterExpr{}, parser.unexpected(next)
	}
	return filterExpr{clauses: clauses}, nil
}

// matches reports whether props satisfies every clause.
func (f filterExpr) matches(props Object) bool {
	for _, clause := range f.clauses {
		if !clause.matches(props) {
			return false
		}
	}
	return true
}

// matches compares like the directory does: strings ignore case, a missing property equals null,
// and a value of another type (a number, a collection) never equals the literal.
func (c comparison) matches(props Object) bool {
	value, found := lookupPath(props, c.property)
	switch c.op {
	case inOp:
		for _, candidate := range c.values {
			if (comparison{property: c.property, value: candidate}).matches(props) {
				return true
			}
		}
		return false
	case startsWithOp:
		text, isString := value.(string)
		return isString && strings.HasPrefix(strings.ToLower(text), strings.ToLower(c.value.text))
	}
	switch c.value.kind {
	case nullLiteral:
		return !found || value == nil
	case booleanLiteral:
		boolean, isBoolean := value.(bool)
		return isBoolean && boolean == c.value.boolean
	case stringLiteral:
		text, isString := value.(string)
		return isString && strings.EqualFold(text, c.value.text)
	default:
		return false
	}
}

// String renders the expression canonically; parsing the result yields the same expression.
func (f filterExpr) String() string {
	rendered := make([]string, len(f.clauses))
	for i, clause := range f.clauses {
		property := strings.Join(clause.property, "/")
		switch clause.op {
		case inOp:
			values := make([]string, len(clause.values))
			for j, v := range clause.values {
				values[j] = v.String()
			}
			rendered[i] = property + " in (" + strings.Join(values, ", ") + ")"
		case startsWithOp:
			rendered[i] = "startsWith(" + property + ", " + clause.value.String() + ")"
		default:
			rendered[i] = property + " eq " + clause.value.String()
		}
	}
	return strings.Join(rendered, " and ")
}

func (l literal) String() string {
	switch l.kind {
	case stringLiteral:
		return "'" + strings.ReplaceAll(l.text, "'", "''") + "'"
	case booleanLiteral:
		if l.boolean {
			return "true"
		}
		return "false"
	default:
		return "null"
	}
}

// lookupPath follows path through nested objects. Property names match exactly or, failing
// that, ignoring case, because Graph property names are case-insensitive.
func lookupPath(props map[string]any, path []string) (any, bool) {
	var current any = props
	for _, name := range path {
		object, isObject := current.(map[string]any)
		if typed, isTyped := current.(Object); isTyped {
			object, isObject = typed, true
		}
		if !isObject {
			return nil, false
		}
		key, found := lookupKey(object, name)
		if !found {
			return nil, false
		}
		current = object[key]
	}
	return current, true
}

// lookupKey returns the key of object that names the property name.
func lookupKey(object map[string]any, name string) (string, bool) {
	if _, found := object[name]; found {
		return name, true
	}
	for key := range object {
		if strings.EqualFold(key, name) {
			return key, true
		}
	}
	return "", false
}

type tokenKind int

const (
	endToken tokenKind = iota
	wordToken
	stringToken
	openToken
	closeToken
	commaToken
)

type filterToken struct {
	kind   tokenKind
	text   string // a word as written, or a string literal unescaped
	offset int
}

func tokenizeFilter(input string) ([]filterToken, error) {
	var tokens []filterToken
	position := 0
	for position < len(input) {
		character := input[position]
		switch {
		case character == ' ' || character == '\t' || character == '\n' || character == '\r':
			position++
		case character == '(':
			tokens = append(tokens, filterToken{kind: openToken, text: "(", offset: position})
			position++
		case character == ')':
			tokens = append(tokens, filterToken{kind: closeToken, text: ")", offset: position})
			position++
		case character == ',':
			tokens = append(tokens, filterToken{kind: commaToken, text: ",", offset: position})
			position++
		case character == '\'':
			text, next, err := scanStringLiteral(input, position)
			if err != nil {
				return nil, err
			}
			tokens = append(tokens, filterToken{kind: stringToken, text: text, offset: position})
			position = next
		case isWordByte(character):
			start := position
			for position < len(input) && isWordByte(input[position]) {
				position++
			}
			tokens = append(tokens, filterToken{kind: wordToken, text: input[start:position], offset: start})
		default:
			return nil, &filterError{offset: position, problem: fmt.Sprintf("unexpected character %q", rune(character))}
		}
	}
	return append(tokens, filterToken{kind: endToken, offset: len(input)}), nil
}

// scanStringLiteral reads the quoted literal starting at input[start] and returns its text and
// the offset just after the closing quote.
func scanStringLiteral(input string, start int) (string, int, error) {
	var text strings.Builder
	position := start + 1
	for position < len(input) {
		if input[position] != '\'' {
			text.WriteByte(input[position])
			position++
			continue
		}
		if position+1 < len(input) && input[position+1] == '\'' {
			text.WriteByte('\'')
			position += 2
			continue
		}
		return text.String(), position + 1, nil
	}
	return "", 0, &filterError{offset: start, problem: "unterminated string literal"}
}

// isWordByte accepts the bytes of property paths (employeeOrgData/costCenter), keywords and
// unquoted literals such as numbers, GUIDs and dates, so that the latter can be named in errors.
func isWordByte(character byte) bool {
	return character >= 'a' && character <= 'z' ||
		character >= 'A' && character <= 'Z' ||
		character >= '0' && character <= '9' ||
		character == '_' || character == '/' || character == '.' || character == '-' ||
		character == ':' || character == '$' || character == '+'
}

type filterParser struct {
	input    string
	tokens   []filterToken
	position int
}

func (p *filterParser) peek() filterToken { return p.tokens[p.position] }

func (p *filterParser) next() filterToken {
	token := p.tokens[p.position]
	if token.kind != endToken {
		p.position++
	}
	return token
}

func (p *filterParser) parseConjunction(depth int) ([]comparison, error) {
	var clauses []comparison
	for {
		termClauses, err := p.parseTerm(depth)
		if err != nil {
			return nil, err
		}
		clauses = append(clauses, termClauses...)
		next := p.peek()
		if next.kind != wordToken {
			return clauses, nil
		}
		switch strings.ToLower(next.text) {
		case "and":
			p.next()
		case "or":
			return nil, &filterError{offset: next.offset, problem: "operator 'or' is not supported"}
		default:
			return nil, p.unexpected(next)
		}
	}
}

func (p *filterParser) parseTerm(depth int) ([]comparison, error) {
	token := p.next()
	switch token.kind {
	case openToken:
		if depth >= maxFilterNesting {
			return nil, &filterError{offset: token.offset, problem: "parentheses nested too deeply"}
		}
		clauses, err := p.parseConjunction(depth + 1)
		if err != nil {
			return nil, err
		}
		if closing := p.next(); closing.kind != closeToken {
			return nil, p.expected("')'", closing)
		}
		return clauses, nil
	case wordToken:
		return p.parseComparison(token)
	default:
		return nil, p.expected("a property name", token)
	}
}

func (p *filterParser) parseComparison(property filterToken) ([]comparison, error) {
	if strings.EqualFold(property.text, "not") {
		return nil, &filterError{offset: property.offset, problem: "operator 'not' is not supported"}
	}
	if p.peek().kind == openToken {
		if strings.EqualFold(property.text, "startsWith") {
			return p.parseStartsWith()
		}
		return nil, &filterError{offset: property.offset, problem: fmt.Sprintf("function or lambda operator '%s' is not supported", property.text)}
	}
	path, err := propertyPath(property)
	if err != nil {
		return nil, err
	}
	operator := p.next()
	if operator.kind != wordToken {
		return nil, p.expected("operator 'eq'", operator)
	}
	if strings.EqualFold(operator.text, "in") {
		values, err := p.parseLiteralList()
		if err != nil {
			return nil, err
		}
		return []comparison{{property: path, op: inOp, values: values}}, nil
	}
	if !strings.EqualFold(operator.text, "eq") {
		return nil, &filterError{offset: operator.offset, problem: fmt.Sprintf("operator '%s' is not supported", operator.text)}
	}
	value, err := p.parseLiteral()
	if err != nil {
		return nil, err
	}
	return []comparison{{property: path, value: value}}, nil
}

// parseStartsWith reads "(property, 'prefix')" after the function name.
func (p *filterParser) parseStartsWith() ([]comparison, error) {
	p.next() // (
	property := p.next()
	if property.kind != wordToken {
		return nil, p.expected("a property name", property)
	}
	path, err := propertyPath(property)
	if err != nil {
		return nil, err
	}
	if comma := p.next(); comma.kind != commaToken {
		return nil, p.expected("','", comma)
	}
	prefix := p.next()
	if prefix.kind != stringToken {
		return nil, p.expected("a quoted prefix", prefix)
	}
	if closing := p.next(); closing.kind != closeToken {
		return nil, p.expected("')'", closing)
	}
	return []comparison{{property: path, op: startsWithOp, value: literal{kind: stringLiteral, text: prefix.text}}}, nil
}

// parseLiteralList reads "(literal, literal, …)" after in.
func (p *filterParser) parseLiteralList() ([]literal, error) {
	if open := p.next(); open.kind != openToken {
		return nil, p.expected("'('", open)
	}
	var values []literal
	for {
		value, err := p.parseLiteral()
		if err != nil {
			return nil, err
		}
		values = append(values, value)
		switch separator := p.next(); separator.kind {
		case commaToken:
		case closeToken:
			return values, nil
		default:
			return nil, p.expected("',' or ')'", separator)
		}
	}
}

func propertyPath(token filterToken) ([]string, error) {
	path := strings.Split(token.text, "/")
	for _, name := range path {
		if !isIdentifier(name) {
			return nil, &filterError{offset: token.offset, problem: fmt.Sprintf("'%s' is not a property name", token.text)}
		}
	}
	return path, nil
}

func isIdentifier(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		character := name[i]
		isLetter := character >= 'a' && character <= 'z' || character >= 'A' && character <= 'Z' || character == '_'
		isDigit := character >= '0' && character <= '9'
		if !isLetter && !(isDigit && i > 0) {
			return false
		}
	}
	return true
}

func (p *filterParser) parseLiteral() (literal, error) {
	token := p.next()
	switch token.kind {
	case stringToken:
		return literal{kind: stringLiteral, text: token.text}, nil
	case wordToken:
		switch strings.ToLower(token.text) {
		case "true":
			return literal{kind: booleanLiteral, boolean: true}, nil
		case "false":
			return literal{kind: booleanLiteral, boolean: false}, nil
		case "null":
			return literal{kind: nullLiteral}, nil
		}
		return literal{}, &filterError{offset: token.offset, problem: fmt.Sprintf("literal %s is not supported (quote strings, or use true, false or null)", token.text)}
	default:
		return literal{}, p.expected("a literal", token)
	}
}

func (p *filterParser) expected(what string, got filterToken) error {
	if got.kind == endToken {
		return &filterError{offset: got.offset, problem: fmt.Sprintf("expected %s but the filter ended", what)}
	}
	return &filterError{offset: got.offset, problem: fmt.Sprintf("expected %s but found '%s'", what, got.text)}
}

func (p *filterParser) unexpected(got filterToken) error {
	return &filterError{offset: got.offset, problem: fmt.Sprintf("unexpected '%s'", got.text)}
}
