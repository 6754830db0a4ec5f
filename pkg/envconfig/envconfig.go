// Package envconfig reads typed configuration from environment variables, collecting every problem
// so that a service reports all bad variables at once, each by name.
package envconfig

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads variables through a lookup function and remembers what was wrong with them.
// It is not safe for concurrent use.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New returns an Env reading variables through lookup (os.LookupEnv in production, a map in tests).
func New(lookup func(string) (string, bool)) *Env {
	return &Env{lookup: lookup}
}

// FromOS returns an Env over the process environment.
func FromOS() *Env { return New(os.LookupEnv) }

// Map adapts a map to a lookup function, for tests.
func Map(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Fail records a problem with a variable that the caller found itself.
func (e *Env) Fail(name string, err error) {
	e.errs = append(e.errs, fmt.Errorf("%s: %w", name, err))
}

// String returns the variable's value, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// Required returns the variable's value and records an error when it is unset or empty.
func (e *Env) Required(name string) string {
	v, ok := e.get(name)
	if !ok {
		e.Fail(name, errors.New("must be set"))
	}
	return v
}

// Int returns the variable as an integer, or def when unset.
func (e *Env) Int(name string, def int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Fail(name, fmt.Errorf("%q is not an integer", v))
		return def
	}
	return n
}

// Bool returns the variable as a boolean (true/false/1/0), or def when unset.
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.Fail(name, fmt.Errorf("%q is not a boolean (true or false)", v))
		return def
	}
	return b
}

// Duration returns the variable as a Go duration ("30s", "5m"), or def when unset.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.Fail(name, fmt.Errorf("%q is not a non-negative duration such as 30s or 5m", v))
		return def
	}
	return d
}

// Secret returns a secret from NAME or, when NAME is unset, from the file named by NAME_FILE, with
// surrounding whitespace removed. The value never appears in an error.
func (e *Env) Secret(name string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	path, ok := e.get(name + "_FILE")
	if !ok {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		e.Fail(name+"_FILE", fmt.Errorf("reading %s: %w", path, err))
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Err returns every recorded problem joined, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }
