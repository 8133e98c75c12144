package authn

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrClaimType is the cause of refusing a token (or an introspection
// answer) whose registered claim has the wrong JSON type.
var ErrClaimType = errors.New("authn: claim of the wrong type")

// The readers below take claims as encoding/json decodes them into a
// map[string]any: strings, float64 numbers, []any arrays, nil for null.
// An absent claim and a null one are alike: not set.

// StringClaim reads a string claim; "" when it is not set.
func StringClaim(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a string", ErrClaimType, name)
	}
	return s, nil
}

// StringsClaim reads a string or an array of strings; with split, a string
// is a space-separated list (the RFC 7662, RFC 8693 and RFC 9068 form of
// scope). nil when it is not set.
func StringsClaim(m map[string]any, name string, split bool) ([]string, error) {
	switch v := m[name].(type) {
	case nil:
		return nil, nil
	case string:
		if split {
			return strings.Fields(v), nil
		}
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: %q is not a list of strings", ErrClaimType, name)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: %q is not a string or a list of strings", ErrClaimType, name)
	}
}

// TimeClaim reads a NumericDate (seconds since the epoch, RFC 7519 §2);
// ok is false when it is not set.
func TimeClaim(m map[string]any, name string) (t time.Time, ok bool, err error) {
	v, present := m[name]
	if !present || v == nil {
		return time.Time{}, false, nil
	}
	f, isNum := v.(float64)
	// Up to the year 5138: past that a value is a mistake (milliseconds).
	if !isNum || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%w: %q is not a time in seconds since the epoch", ErrClaimType, name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}
