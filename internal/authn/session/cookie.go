package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// Cookies are "<value>.<tag>": value base64url, tag the first 16 bytes of
// HMAC-SHA256(key, name "=" value), base64url. The name is under the tag
// so that the pre-login cookie's value cannot be replayed as a session.

const tagLen = 16

func sign(key []byte, name, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name))
	m.Write([]byte{'='})
	m.Write([]byte(value))
	return value + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:tagLen])
}

// unsign returns the value of a signed cookie, or ok false when its tag
// does not match (tampered, or signed with another key).
func unsign(key []byte, name, signed string) (value string, ok bool) {
	value, tag, found := strings.Cut(signed, ".")
	if !found || value == "" {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(tag)
	if err != nil || len(got) != tagLen {
		return "", false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name))
	m.Write([]byte{'='})
	m.Write([]byte(value))
	if !hmac.Equal(got, m.Sum(nil)[:tagLen]) {
		return "", false
	}
	return value, true
}

// random returns n random bytes, base64url.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashHex is the hex SHA-256 of a label and a value: the store never holds
// a session id or a state as they are sent.
func hashKey(label, v string) string {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// cookieNames returns the session and pre-login cookie names for a
// request over TLS or not: the __Host- prefix (Secure, Path=/, no Domain)
// only where the browser accepts Secure cookies.
func (a *Authenticator) cookieNames(tls bool) (sess, login string) {
	if tls {
		return a.hostSess, a.hostLogin
	}
	return a.s.cookie, a.s.cookie + "_login"
}

func newCookie(name, value string, tls bool, maxAge time.Duration) string {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Secure:   tls,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else if maxAge < 0 {
		c.MaxAge = -1
	}
	return c.String()
}

// findCookie returns the value of the first cookie named name in r, and
// whether there was one. Read by hand: http.Request.Cookie parses every
// cookie of the header into a slice.
func findCookie(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header.Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if k == name {
				return strings.Trim(v, `"`), true
			}
		}
	}
	return "", false
}

// stripCookies removes the named cookies from r's Cookie header: the
// upstream never sees the session's reference. It runs on every request
// with a session, so it allocates only the rewritten value, and nothing
// when the header held our cookies alone.
func stripCookies(r *http.Request, names ...string) {
	vals := r.Header["Cookie"]
	if len(vals) == 0 {
		return
	}
	var b strings.Builder
	for _, line := range vals {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			k, _, _ := strings.Cut(p, "=")
			drop := false
			for _, n := range names {
				if k == n {
					drop = true
					break
				}
			}
			if drop {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
	}
	if b.Len() == 0 {
		delete(r.Header, "Cookie")
		return
	}
	vals[0] = b.String()
	r.Header["Cookie"] = vals[:1]
}
