package jwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/internal/authn"
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
var errClaimType = authn.ErrClaimType
