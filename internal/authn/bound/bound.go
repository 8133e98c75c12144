// Package bound keeps the promise of a sender-constrained access token at
// every authenticator that accepts one: a token whose confirmation (RFC
// 7800 cnf) names a DPoP key (cnf.jkt, RFC 9449) is honoured only with the
// DPoP scheme and a valid proof by that key over the request and the
// token; one that names a client certificate (cnf["x5t#S256"], RFC 8705)
// only over a connection whose verified client certificate has that
// thumbprint.
//
// The jwt and introspect authenticators apply it by default, so that a
// route is not left open to a stolen bound token for want of a separate
// `binding` policy. An authenticator may opt out with
// `unsafe_ignore_token_binding: true`, for a route whose `binding` policy
// (with its own proof settings) or upstream checks the proof instead.
package bound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Causes of refusals, for errors.Is on a Denial's Err.
var (
	// ErrBearerUse: a DPoP-bound token was sent without the DPoP scheme
	// (RFC 9449 §7.1: it must not be accepted as a bearer token).
	ErrBearerUse = errors.New("bound: DPoP-bound token used without the DPoP scheme")
	// ErrCertMismatch: the token is bound to a certificate the connection
	// did not present (or presented unverified).
	ErrCertMismatch = errors.New("bound: token bound to another client certificate")
	// ErrCnf: the cnf claim is not an object of non-empty strings.
	ErrCnf = errors.New("bound: malformed cnf claim")
)

// Options configure a Checker.
type Options struct {
	// Realm names the protection space in challenges.
	Realm string
	// Now is the clock of proofs and their replay cache. nil: time.Now.
	Now func() time.Time
	// PublicOrigin, when set, is the scheme://host[:port] clients use:
	// the URL a proof's htu must name is it and the request's path.
	PublicOrigin string
	// TrustedProxies are the proxies whose X-Forwarded-Proto and
	// X-Forwarded-Host give that URL when PublicOrigin is not set.
	TrustedProxies []netip.Prefix
	// Ignore turns the check off (unsafe_ignore_token_binding): Check
	// then only refuses a DPoP-bound token sent as a bearer token.
	Ignore bool
	// Store, when set, holds the replay cache of proofs, so that a proof
	// seen by one instance is refused by every other sharing the store.
	// Nil: a cache in memory.
	Store store.Store
}

// Checker checks token bindings. It is safe for concurrent use.
type Checker struct {
	realm    string
	ignore   bool
	verifier *dpop.Verifier
}

// New returns a checker with its own DPoP replay cache.
func New(o Options) *Checker {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	c := &Checker{realm: o.Realm, ignore: o.Ignore}
	opts := dpop.Options{Now: now, Realm: o.Realm, ReplayCache: dpop.NewMemoryReplayCache(dpop.DefaultReplayCacheSize, now)}
	if o.Store != nil {
		opts.ReplayCache = storeReplay{st: o.Store, now: now}
	}
	switch {
	case o.PublicOrigin != "":
		origin := strings.TrimSuffix(o.PublicOrigin, "/")
		opts.PublicURL = func(r *http.Request) string { return origin + r.URL.EscapedPath() }
	case len(o.TrustedProxies) > 0:
		trusted := o.TrustedProxies
		opts.PublicURL = func(r *http.Request) string { return ForwardedURL(r, trusted) }
	}
	c.verifier = dpop.NewVerifier(opts)
	return c
}

// Check refuses the request unless the binding of its token tok (jkt and
// x5t from its cnf, "" for none) holds: 401 invalid_token with a DPoP
// challenge for a DPoP-bound token sent as a bearer token, the dpop
// verifier's 401 invalid_dpop_proof for a missing or bad proof, 401
// invalid_token for a certificate-bound token without its certificate.
func (c *Checker) Check(ctx context.Context, r *http.Request, tok authn.Token, jkt, x5t string) error {
	if jkt != "" {
		if tok.Scheme != "DPoP" {
			desc := "the token is bound to a DPoP key and must be used with the DPoP scheme"
			return &policy.Denial{
				Status: http.StatusUnauthorized, Code: "invalid_token", Detail: desc,
				Header: http.Header{"Www-Authenticate": {c.verifier.Challenge("error", "invalid_token", "error_description", desc)}},
				Err:    ErrBearerUse,
			}
		}
		if !c.ignore {
			if _, err := c.verifier.Verify(ctx, r, tok.Value, jkt); err != nil {
				return err
			}
		}
	}
	if x5t != "" && !c.ignore {
		got, ok := mtls.Thumbprint(r)
		// Thumbprints are public; equality needs no constant time.
		if !ok || got != x5t {
			return authn.InvalidToken(c.realm, tok.Scheme, "the token is bound to a client certificate this connection did not present", ErrCertMismatch)
		}
	}
	return nil
}

// Cnf returns the confirmation members of a cnf claim value (RFC 7800):
// the JWK thumbprint (RFC 9449 §6) and the certificate thumbprint (RFC
// 8705 §3.1). A missing or null cnf binds nothing; a cnf that is not an
// object, whose jkt or x5t#S256 is not a non-empty string, or that holds
// any other confirmation method (which no proof here can satisfy) is
// ErrCnf: a binding that cannot be read or checked must not be read as
// none.
func Cnf(v any) (jkt, x5t string, err error) {
	get := func(m map[string]any, k string) (string, error) {
		x, ok := m[k]
		if !ok {
			return "", nil
		}
		s, ok := x.(string)
		if !ok || s == "" {
			return "", ErrCnf
		}
		return s, nil
	}
	switch m := v.(type) {
	case nil:
		return "", "", nil
	case map[string]any:
		for k := range m {
			if k != "jkt" && k != "x5t#S256" {
				// A confirmation method we cannot check (RFC 7800 jwk,
				// jwe, kid, jku; anything else): the token is bound to
				// something, and accepting it as unbound would drop that.
				return "", "", fmt.Errorf("%w: unsupported confirmation method %q", ErrCnf, truncate(k))
			}
		}
		if jkt, err = get(m, "jkt"); err != nil {
			return "", "", err
		}
		x5t, err = get(m, "x5t#S256")
		return jkt, x5t, err
	case map[string]string:
		return m["jkt"], m["x5t#S256"], nil
	}
	return "", "", ErrCnf
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// ForwardedURL is the URL the client used according to the
// X-Forwarded-Proto and X-Forwarded-Host headers, believed only from a
// trusted proxy peer; otherwise, or when they are absent, the gateway's
// own view. Of several values the last counts: the one added by the
// proxy closest to the gateway, which is trusted.
func ForwardedURL(r *http.Request, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !clientip.Trusted(ap.Addr(), trusted) {
		return dpop.RequestURL(r)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := lastValue(r.Header, "X-Forwarded-Proto"); p != "" {
		scheme = strings.ToLower(p)
	}
	host := r.Host
	if h := lastValue(r.Header, "X-Forwarded-Host"); h != "" {
		host = h
	}
	return scheme + "://" + host + r.URL.EscapedPath()
}

func lastValue(h http.Header, name string) string {
	vals := h.Values(name)
	if len(vals) == 0 {
		return ""
	}
	v := vals[len(vals)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// storeReplay is the proofs' replay cache in the shared store. Keys are
// hashed: the jti is the client's to choose.
type storeReplay struct {
	st  store.Store
	now func() time.Time
}

func (s storeReplay) Seen(ctx context.Context, key string, exp time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(key))
	fresh, err := s.st.SetNX(ctx, "authn:dpop:"+hex.EncodeToString(sum[:]), []byte("1"), max(exp.Sub(s.now()), time.Second))
	return !fresh, err
}

// CheckOrigin reports whether s is usable as Options.PublicOrigin: an
// absolute http(s) URL with a host and nothing after it.
func CheckOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("dpop_public_origin must be scheme://host[:port], without a path")
	}
	return nil
}
