package config

import (
	"errors"
	"path/filepath"
)

// This file holds what every policy and authenticator package uses to
// check and provision its settings (the unit lifecycle: decode, validate,
// provision, Close), so no unit keeps its own copy.

// Index returns the path of element i of the sequence at field, spelled as
// the config package spells paths: Index("allow", 2) is "allow[2]". It is
// the field argument of Errorf for a problem with one element.
func Index(field string, i int) string { return field + indexSeg(i) }

// ResolvePath returns p as a path to open: p itself when it is absolute,
// else p joined to the directory of the file n was read from ("." when n
// has no file), the way secret file paths are resolved. A relative path in
// a config thus names the same file whatever the gateway's working
// directory. It does no I/O; "" stays "".
func (n *Node) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	dir := "."
	if n != nil {
		dir = n.doc().dir
	}
	return filepath.Join(dir, p)
}

// Problems collects the config errors of a unit's validate step, so that
// independent problems are all reported at once instead of one per load.
// The zero value is ready to use.
type Problems struct {
	errs Errors
	// other holds errors that are not positioned (*Error or Errors); a
	// unit should not produce them, but they are never dropped.
	other []error
}

// Add records err, which is typically the result of Node.Errorf or
// Node.Decode; a nil err is ignored. It returns err != nil, so a check
// that later checks depend on can stop early:
//
//	if p.Add(validateKeys(cfg, c)) { return p.Err() }
func (p *Problems) Add(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	var es Errors
	switch {
	case errors.As(err, &es):
		p.errs = append(p.errs, es...)
	case errors.As(err, &e):
		p.errs = append(p.errs, e)
	default:
		p.other = append(p.other, err)
	}
	return true
}

// Errorf records n.Errorf(field, format, args...).
func (p *Problems) Errorf(n *Node, field, format string, args ...any) {
	p.Add(n.Errorf(field, format, args...))
}

// Len returns the number of problems recorded.
func (p *Problems) Len() int { return len(p.errs) + len(p.other) }

// Err returns nil when no problem was recorded, else an Errors in file
// order (joined with any unpositioned error).
func (p *Problems) Err() error {
	err := p.errs.err()
	if len(p.other) == 0 {
		return err
	}
	return errors.Join(append([]error{err}, p.other...)...)
}
