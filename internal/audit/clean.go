package audit

import (
	"strings"
	"unicode/utf8"
)

// Redacted replaces what Clean takes out.
const Redacted = "[redacted]"

// maxField bounds every string field of an Event.
const maxField = 256

// maxOpaque is the longest run of token characters (letters, digits,
// - _ . ~ + / =) that Clean lets through. Identifiers in events are
// shorter: request ids are 32 hex digits, jtis 22 characters, kids 43;
// access tokens, API keys, client secrets and SAML assertions are longer.
const maxOpaque = 48

// Clean returns s fit for the audit log: control characters removed,
// anything shaped like a credential replaced by "[redacted]" (a JWT or
// JWE of dot-separated base64url parts, the word after "Bearer", "DPoP" or
// "Basic", a run of more than 48 token characters), cut to 256 bytes.
func Clean(s string) string {
	if !needsCleaning(s) {
		// The common case (codes, route names, ids): no allocation.
		return s
	}
	var b strings.Builder
	redactNext := false
	for tok := range strings.SplitSeq(s, " ") {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		switch {
		case redactNext && tok != "":
			b.WriteString(Redacted)
			redactNext = false
			continue
		case strings.EqualFold(tok, "bearer") || strings.EqualFold(tok, "dpop") || strings.EqualFold(tok, "basic"):
			redactNext = true
		}
		b.WriteString(cleanWord(tok))
	}
	out := b.String()
	if len(out) > maxField {
		out = out[:maxField]
		// Do not leave half a UTF-8 sequence.
		for len(out) > 0 {
			if r, n := utf8.DecodeLastRuneInString(out); r != utf8.RuneError || n != 1 {
				break
			}
			out = out[:len(out)-1]
		}
	}
	return out
}

// cleanWord redacts the long opaque runs and JWT shapes in one word and
// drops control characters.
func cleanWord(w string) string {
	if looksLikeJWT(w) {
		return Redacted
	}
	var b strings.Builder
	start := 0 // of the current run of token characters
	emitRun := func(end int) {
		if end-start > maxOpaque {
			b.WriteString(Redacted)
		} else {
			b.WriteString(w[start:end])
		}
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if tokenChar(c) {
			continue
		}
		emitRun(i)
		if c >= 0x20 && c != 0x7f {
			b.WriteByte(c)
		}
		start = i + 1
	}
	emitRun(len(w))
	return b.String()
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

// looksLikeJWT reports whether w contains three or more dot-separated
// base64url parts of which the first starts like a JSON header ("eyJ").
func looksLikeJWT(w string) bool {
	i := strings.Index(w, "eyJ")
	if i < 0 {
		return false
	}
	return strings.Count(w[i:], ".") >= 2
}

func clean(e *Event) {
	e.Kind = Kind(Clean(string(e.Kind)))
	e.RequestID = Clean(e.RequestID)
	e.TraceID = Clean(e.TraceID)
	e.SpanID = Clean(e.SpanID)
	e.Principal = Clean(e.Principal)
	e.Route = Clean(e.Route)
	e.Policy = Clean(e.Policy)
	e.Code = Clean(e.Code)
	e.ClientID = Clean(e.ClientID)
	e.JTI = Clean(e.JTI)
	e.KeyID = Clean(e.KeyID)
	e.Action = Clean(e.Action)
	e.Result = Clean(e.Result)
	e.Detail = Clean(e.Detail)
}

// needsCleaning reports whether Clean could change s.
func needsCleaning(s string) bool {
	if len(s) > maxField || strings.Contains(s, "eyJ") {
		return true
	}
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		if tokenChar(c) {
			run++
			if run > maxOpaque {
				return true
			}
			continue
		}
		run = 0
	}
	return hasFold(s, "bearer") || hasFold(s, "dpop") || hasFold(s, "basic")
}

// hasFold reports whether s contains the lower-case ASCII word w in any
// case, without allocating.
func hasFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for j < len(w) && s[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
