package jwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// errDuplicate is the cause of the refusal of a header or payload in which
// a member name appears twice. RFC 7515 §5.2 and RFC 7519 §4 allow either
// refusing such a token or taking the last value; we refuse, because the
// upstream or another policy reading the same token with another parser
// may take the first one, and the gateway and they would then disagree on
// who the caller is.
var errDuplicate = errors.New("jwt: duplicate member name")

// maxDepth bounds the nesting of claims: real claims nest two or three
// levels; deep nesting is only a way to burn CPU.
const maxDepth = 32

// decodeObject decodes a JSON object into the map encoding/json would give
// (numbers as float64), refusing duplicate member names at any depth and
// anything after the object.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errors.New("jwt: not a JSON object")
	}
	m, err := decodeMembers(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("jwt: data after the JSON object")
	}
	return m, nil
}

func decodeMembers(dec *json.Decoder, depth int) (map[string]any, error) {
	if depth > maxDepth {
		return nil, errors.New("jwt: JSON nested too deeply")
	}
	m := make(map[string]any)
	for {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if d, ok := t.(json.Delim); ok && d == '}' {
			return m, nil
		}
		name, ok := t.(string)
		if !ok {
			return nil, errors.New("jwt: malformed JSON object")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%w %q", errDuplicate, truncate(name))
		}
		t, err = dec.Token()
		if err != nil {
			return nil, err
		}
		v, err := decodeValue(dec, t, depth)
		if err != nil {
			return nil, err
		}
		m[name] = v
	}
}

func decodeValue(dec *json.Decoder, t json.Token, depth int) (any, error) {
	d, ok := t.(json.Delim)
	if !ok {
		return t, nil // string, float64, bool or nil
	}
	switch d {
	case '{':
		return decodeMembers(dec, depth+1)
	case '[':
		if depth+1 > maxDepth {
			return nil, errors.New("jwt: JSON nested too deeply")
		}
		out := []any{}
		for {
			t, err := dec.Token()
			if err != nil {
				return nil, err
			}
			if d, ok := t.(json.Delim); ok && d == ']' {
				return out, nil
			}
			v, err := decodeValue(dec, t, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return nil, errors.New("jwt: malformed JSON")
}

// truncate shortens a value from a token for an internal error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// errClaimType is the cause of refusing a token whose registered claim has
// the wrong JSON type.
var errClaimType = errors.New("jwt: claim of the wrong type")

func stringClaim(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a string", errClaimType, name)
	}
	return s, nil
}

// stringsClaim reads a string or an array of strings; with split, a string
// is a space-separated list (the RFC 8693 / RFC 9068 form of scope).
func stringsClaim(m map[string]any, name string, split bool) ([]string, error) {
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
				return nil, fmt.Errorf("%w: %q is not a list of strings", errClaimType, name)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: %q is not a string or a list of strings", errClaimType, name)
	}
}

// timeClaim reads a NumericDate (seconds since the epoch, RFC 7519 §2);
// ok is false when the claim is absent.
func timeClaim(m map[string]any, name string) (t time.Time, ok bool, err error) {
	v, present := m[name]
	if !present || v == nil {
		return time.Time{}, false, nil
	}
	f, isNum := v.(float64)
	// Up to the year 5138: past that a value is a mistake (milliseconds).
	if !isNum || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%w: %q is not a time in seconds since the epoch", errClaimType, name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}
