package config

import (
	"errors"
	"fmt"
	"os"
)

// LoadForCheck is Load for `gatehouse check`, which reports every
// independent problem in one run: besides the problems Load reports, it
// returns the config as far as it decoded (nil when the file is not a
// YAML mapping), so that the later stages (each policy's settings,
// certificates, routes) can be checked too. A nil error means the config
// loaded as Load would load it.
func LoadForCheck(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, errs := load(path, data, os.LookupEnv)
	return c, errs.err()
}

// MergeErrors joins the problems of several stages into one error, sorted
// by position as Load sorts them, with repeats dropped. A problem from a
// later stage at or below the path of an earlier stage's problem is left
// out: it is the same fault seen again (a policy whose settings failed to
// decode, built from what was left). Errors that are not config errors
// are kept, after the positioned ones. Nil when there is nothing.
func MergeErrors(first error, later ...error) error {
	var all Errors
	var other []error
	add := func(err error, filter Errors) {
		var es Errors
		var e *Error
		switch {
		case err == nil:
			return
		case errors.As(err, &es):
		case errors.As(err, &e):
			es = Errors{e}
		default:
			other = append(other, err)
			return
		}
		for _, e := range es {
			if !overlapsAny(e.Path, filter) {
				all = append(all, e)
			}
		}
	}
	add(first, nil)
	var earlier Errors
	for _, e := range all {
		// A problem with the document as a whole hides nothing.
		if e.Path != "" {
			earlier = append(earlier, e)
		}
	}
	for _, err := range later {
		add(err, earlier)
	}
	merged := all.err()
	switch {
	case merged == nil && len(other) == 0:
		return nil
	case merged == nil:
		return errors.Join(other...)
	case len(other) == 0:
		return merged
	}
	return errors.Join(append([]error{merged}, other...)...)
}
