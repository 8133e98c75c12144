package config

import (
	"errors"
	"testing"
)

// TestParseFragment: a piece cut from line 41 of a file reports its
// problems at that file's lines and paths, for syntax, expansion and
// decode errors alike.
func TestParseFragment(t *testing.T) {
	env := func(k string) (string, bool) { return "v", k == "SET" }
	tests := []struct {
		name     string
		data     string
		line     int
		path     string
		parseErr bool
	}{
		{"syntax", "    a: [1\n    b: 2\n", 42, "keys[7]", true}, // the real fault: b where , or ] was due
		{"unset variable", "    a: x\n    b: ${UNSET}\n", 42, "keys[7].b", true},
		{"unknown field", "    a: ${SET}\n    c: 2\n", 42, "keys[7].c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseFragment("f.yaml", []byte(tt.data), 41, "keys[7]", env)
			if !tt.parseErr {
				if err != nil {
					t.Fatal(err)
				}
				var v struct {
					A string `yaml:"a"`
					B int    `yaml:"b"`
				}
				err = n.Decode(&v)
				if v.A != "v" {
					t.Errorf("a = %q, want the expanded v", v.A)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "f.yaml" || ce.Line != tt.line || (tt.name != "syntax" && ce.Path != tt.path) {
				t.Errorf("got %v, want f.yaml:%d %s", err, tt.line, tt.path)
			}
		})
	}
}
