package jsonlimits

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"unicode/utf8"
)

// FuzzJSONLimits holds the scanner to encoding/json: it never panics, it
// accepts only documents json.Valid accepts, an accepted document has no
// duplicate key in any object (found by walking encoding/json's tokens),
// and, for input without \u escapes of surrogates (which encoding/json
// replaces and the scanner refuses), it accepts every valid UTF-8
// document without duplicates.
func FuzzJSONLimits(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `0`, `-0.5e+10`, `"a\u00e9\n"`, `{"a":[1,{"b":null}],"c":true}`, `{"a":1,"a":2}`,
		`{"a":1,"\u0061":2}`, `[1,]`, `{"a" 1}`, "\"\xff\"", `"\ud83d\ude00"`, `"\ud800"`, ` [ true , false ] `,
		`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":1}]}`, `01`, `1.`, `[`, `{"x":"y"`,
	} {
		f.Add([]byte(s))
	}
	lim := Limits{}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Check(b, lim)
		valid := json.Valid(b)
		if err == nil {
			if !valid {
				t.Fatalf("accepted %q, which encoding/json refuses", b)
			}
			if dup, ok := hasDuplicate(b); !ok || dup {
				t.Fatalf("accepted %q, which has a duplicate key", b)
			}
			return
		}
		if valid && utf8.Valid(b) && !bytes.Contains(bytes.ToLower(b), []byte(`\ud`)) {
			if dup, ok := hasDuplicate(b); ok && !dup {
				t.Fatalf("refused valid %q: %v", b, err)
			}
		}
	})
}

// hasDuplicate walks b with encoding/json's tokenizer and reports whether
// an object repeats a key; ok is false when b does not tokenize.
func hasDuplicate(b []byte) (dup, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type level struct {
		obj    bool
		keys   map[string]bool
		expect bool // obj: the next string token is a key
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false, true
		}
		if err != nil {
			return false, false
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.expect = true
				}
				stack = append(stack, &level{obj: v == '{', keys: map[string]bool{}, expect: true})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.obj && top.expect {
				if top.keys[v] {
					return true, true
				}
				top.keys[v] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.obj {
			top.expect = true
		}
	}
}
