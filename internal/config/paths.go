package config

import (
	"fmt"
	"strings"
)

// Paths are the request path rules shared by every route.
//
//	paths:
//	  matrix_params: false
type Paths struct {
	// MatrixParams allows ";" in path segments, for servlet upstreams
	// (Tomcat, Jetty, Spring) that read "/a;v=1/b" as "/a/b" with a path
	// parameter. The gateway then routes on the path without the
	// parameters, as those upstreams resolve it, and still refuses a
	// segment whose name (before ";") is empty, "." or "..". False, the
	// default: any ";" in the decoded path is refused with 400
	// invalid_path, since stacks disagree on what it means.
	MatrixParams bool `yaml:"matrix_params"`
}

// checkMethod returns why meth is not acceptable in a route's methods (of
// n entries), or "".
func checkMethod(meth string, n int) string {
	switch {
	case meth == "*":
		if n > 1 {
			return `"*" (any method) must be the only method`
		}
		return ""
	case !IsToken(meth):
		return fmt.Sprintf("invalid method %q: not an HTTP token", meth)
	case strings.ToUpper(meth) != meth:
		// RFC 9110 §9.1: methods are case-sensitive. Folding "delete"
		// to DELETE here would hide that a client's "delete" is not
		// DELETE.
		return fmt.Sprintf("invalid method %q: methods are case-sensitive; write %q", meth, strings.ToUpper(meth))
	}
	return ""
}
