package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem at a place in a config file.
//
// File is the config file's name as given to Load ("" when unknown). Line
// and Column are 1-based; 0 means unknown (for example, a problem with a
// Config that was not loaded from a file). Path is the dotted field path from
// the document root, like "routes[0].policies[1].ipfilter.allow[2]"; "" means
// the document as a whole. Msg says what is wrong, in lower case.
type Error struct {
	File         string
	Line, Column int
	Path         string
	Msg          string

	// cause is the underlying error (a missing secret file, a failing
	// yaml.Unmarshaler), kept so errors.Is(err, fs.ErrNotExist) works.
	cause error
}

// Error formats the problem as "FILE:LINE:COL: PATH: MSG". Unknown parts are
// left out; with neither file nor line the message starts with "config: ".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() == 0 {
		b.WriteString("config")
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Errors is several problems, in file order. Load and Node.Decode return an
// Errors holding every problem they found, never an empty one.
type Errors []*Error

// Error joins the problems' messages with newlines, one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems, so errors.As(err, &e) with e a *Error finds
// the first one.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// err returns es as an error: nil when empty, else es sorted by position
// with exact repeats dropped. Repeats come from anchors: a bad value in an
// anchored node is found again at every alias, at the same line.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	sorted := slices.Clone(es)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		// Errors without a position go last, in the order found.
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	type key struct {
		file      string
		line, col int
		msg       string
	}
	seen := make(map[key]bool, len(sorted))
	out := sorted[:0]
	for _, e := range sorted {
		k := key{e.File, e.Line, e.Column, e.Msg}
		if e.Line > 0 && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}
