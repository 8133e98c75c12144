package session

import (
	"fmt"
	"net/url"
	"strings"
)

func errInvalid(format string, args ...any) error { return fmt.Errorf(format, args...) }

// safeTarget reports whether v may be a post-login target: a path on this
// site, never anything a browser could read as another origin. Browsers
// take "//host", "/\host" and "\\host" as scheme-relative URLs (they turn
// a backslash into a slash), and strip tabs and newlines before parsing
// ("/\t/host"), so a target is a single leading "/" followed by anything
// but a second "/" or "\", and holds no backslash, control character or
// space anywhere.
func safeTarget(v string) bool {
	if len(v) == 0 || v[0] != '/' || len(v) > 2048 {
		return false
	}
	if len(v) > 1 && (v[1] == '/' || v[1] == '\\') {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.IsAbs() || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// A percent-encoded slash or backslash right after the first slash
	// is decoded by some upstream redirects into "//": refuse it too.
	if l := strings.ToLower(v); strings.HasPrefix(l, "/%2f") || strings.HasPrefix(l, "/%5c") {
		return false
	}
	return true
}
