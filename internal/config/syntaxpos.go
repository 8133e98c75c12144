package config

import (
	"errors"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
)

// syntaxFault finds where a YAML syntax error really is. yaml.v3 reports
// a syntax error with a line only, and often the line where the
// construct began rather than the fault ("line 1: did not find expected
// ',' or ']'" for a list left open on line 2 and broken on line 3); a
// second parser, goccy/go-yaml, reports the token where parsing failed
// with its line and column. It is used only to place the error: the
// document is read by yaml.v3 alone. ok is false when the second parser
// finds no fault (the two disagree on the YAML dialect), and the caller
// keeps yaml.v3's report.
func syntaxFault(data []byte) (line, col int, msg string, ok bool) {
	// A panic in the second parser on hostile input must not take the
	// load (or a running gateway's reload) down: it only loses the
	// better position.
	defer func() {
		if recover() != nil {
			line, col, msg, ok = 0, 0, "", false
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if err == nil || !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil || se.Token.Position.Line <= 0 {
		return 0, 0, "", false
	}
	return se.Token.Position.Line, se.Token.Position.Column, se.Message, true
}
