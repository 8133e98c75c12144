// Package apikey is the `apikey` authenticator: a key in a request header
// (or, when configured, a query parameter) is looked up among the hashes of
// the configured consumers' keys.
//
// Keys are 256-bit random secrets made by GenerateKey, never passwords, so
// the config holds their plain SHA-256 and a lookup is one hash and one map
// access; a slow password hash would add nothing (there is no dictionary to
// search) and cost microseconds on every request.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit is the `apikey` authenticator type.
var Unit = authn.Unit{Name: "apikey", New: func(cfg *config.Node, env *authn.Env) (authn.Authenticator, error) {
	return New(cfg, env)
}}

// KeyPrefix starts every key GenerateKey makes, so that secret scanners and
// people can tell a Gatehouse key when they see one.
const KeyPrefix = "gh_"

// keyBytes is the entropy of a key.
const keyBytes = 32

// maxKeyLen bounds what is hashed: a presented key longer than this is
// refused as it stands. Generated keys are 46 bytes; the margin admits keys
// made by other tools.
const maxKeyLen = 512

// errUnknownKey is the internal cause of the refusal of a key that matches
// no consumer. It is static so that a refusal costs no formatting.
var errUnknownKey = errors.New("apikey: the key matches no consumer")

// Authenticator authenticates API keys. Safe for concurrent use; it holds
// no resources.
type Authenticator struct {
	p *parsed
}

var _ authn.Authenticator = (*Authenticator)(nil)

// New builds an apikey authenticator from its config, reading keys_file if
// one is named.
func New(cfg *config.Node, env *authn.Env) (*Authenticator, error) {
	p, err := decode(cfg, env)
	if err != nil {
		return nil, err
	}
	return &Authenticator{p: p}, nil
}

// Challenge returns "": API keys have no standard WWW-Authenticate scheme.
func (a *Authenticator) Challenge() string { return "" }

// Authenticate finds the request's API key and returns its consumer. It
// returns ErrNoCredentials when the request carries no key (no header, and
// no query parameter when one is configured); a 401 invalid_api_key Denial
// for a key that is empty or matches no consumer; a 400 invalid_request
// Denial for a request carrying more than one key. With strip (the
// default), a found key is removed from the request before it goes on.
//
// The returned Principal is the caller's own copy, but its Scopes and
// Claims are shared with every request of that consumer and must not be
// modified.
func (a *Authenticator) Authenticate(ctx context.Context, ex *policy.Exchange) (*policy.Principal, error) {
	r := ex.Request
	key, inHeader, inQuery, err := a.find(r)
	if err != nil {
		return nil, err
	}
	if !inHeader && !inQuery {
		return nil, authn.ErrNoCredentials
	}
	if a.p.strip {
		if inHeader {
			delete(r.Header, a.p.header)
		}
		if inQuery {
			r.URL.RawQuery = removeParam(r.URL.RawQuery, a.p.query)
		}
	}
	if key == "" || len(key) > maxKeyLen {
		return nil, invalidKey()
	}
	// Hashing from a stack copy: []byte(key) would cost an allocation.
	var buf [maxKeyLen]byte
	sum := sha256.Sum256(buf[:copy(buf[:], key)])
	if i := a.p.keys.lookup(&sum); i >= 0 {
		return a.p.keys.principal(i), nil
	}
	if a.p.store == nil {
		return nil, invalidKey()
	}
	tmpl, err := a.p.store.lookup(ctx, &sum)
	if err != nil {
		return nil, storeUnavailable(err)
	}
	if tmpl == nil {
		return nil, invalidKey()
	}
	pr := *tmpl
	return &pr, nil
}

// find returns the key of the request and where it was. A request with the
// header more than once, the parameter more than once, or both, is refused:
// the gateway and the upstream might not read the same one.
func (a *Authenticator) find(r *http.Request) (key string, inHeader, inQuery bool, err error) {
	if vals, ok := r.Header[a.p.header]; ok {
		if len(vals) > 1 {
			return "", false, false, duplicate()
		}
		if len(vals) == 1 {
			key, inHeader = strings.TrimSpace(vals[0]), true
		}
	}
	if a.p.query == "" || r.URL.RawQuery == "" {
		return key, inHeader, false, nil
	}
	qkey, n := queryParam(r.URL.RawQuery, a.p.query)
	switch {
	case n == 0:
		return key, inHeader, false, nil
	case n > 1 || inHeader:
		return "", false, false, duplicate()
	}
	return qkey, false, true, nil
}

// queryParam returns the (unescaped) value of the query parameter name in
// raw and how many times it occurs. A badly escaped value counts as empty,
// so that it is refused.
func queryParam(raw, name string) (val string, n int) {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(seg, "=")
		if !paramIs(k, name) {
			continue
		}
		n++
		uv, err := url.QueryUnescape(v)
		if err != nil {
			uv = ""
		}
		val = uv
	}
	return val, n
}

// paramIs reports whether the raw query key k names name, escaped or not
// ("api%5Fkey" is "api_key" to the upstream too). A badly escaped key names
// nothing: no parser reads it as name.
func paramIs(k, name string) bool {
	if k == name {
		return true
	}
	if !strings.ContainsAny(k, "%+") {
		return false
	}
	uk, err := url.QueryUnescape(k)
	return err == nil && uk == name
}

// removeParam returns raw without the parameter name, keeping every other
// parameter byte for byte.
func removeParam(raw, name string) string {
	var b strings.Builder
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(seg, "=")
		if paramIs(k, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func invalidKey() *policy.Denial {
	return &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   "invalid_api_key",
		Detail: "the API key is not valid",
		Err:    errUnknownKey,
	}
}

func duplicate() *policy.Denial {
	return &policy.Denial{
		Status: http.StatusBadRequest,
		Code:   "invalid_request",
		Detail: "the request carries more than one API key",
	}
}

// GenerateKey returns a new API key, KeyPrefix and 32 random bytes in
// unpadded base64url, and its hash as the config writes it (see HashKey).
// The key is to be shown once to its owner; only the hash is kept.
func GenerateKey() (key, hash string, err error) {
	var b [keyBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("apikey: generating a key: %w", err)
	}
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashKey(key), nil
}

// HashKey returns the config form of key's hash: HashPrefix and the
// unpadded base64url SHA-256 of the key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return HashPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// WriteCreateOutput generates a key for consumer and writes what
// `gatehouse apikey create` prints: the key, once, and the config entry
// holding its hash. An invalid consumer name is an error and nothing is
// written.
func WriteCreateOutput(w io.Writer, consumer string) error {
	if !validConsumer(consumer) {
		return fmt.Errorf("apikey: consumer %q: a consumer is 1 to %d letters, digits and . _ - : @", consumer, maxConsumerLen)
	}
	key, hash, err := GenerateKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, `API key for consumer %s (shown only this once: the gateway keeps only its hash):

    %s

Add this entry to the keys of an apikey authenticator, or of its keys_file:

    - consumer: %s
      hash: "%s"
`, consumer, key, consumer, hash)
	if err != nil {
		return fmt.Errorf("apikey: writing the key: %w", err)
	}
	return nil
}
