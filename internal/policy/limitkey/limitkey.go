// Package limitkey says whose limit a request counts against: the key of
// the rate_limit, quota and throttle policies. A key is written in config
// as one of
//
//	consumer          the principal's Consumer
//	client_id         the principal's ClientID
//	api_key           the Consumer of a principal proven by an API key
//	ip                the client address (trusted proxies applied)
//	route             one key for the whole route
//	header:NAME       the first value of request header NAME
//	expr:CEL          a CEL expression of type string (see the expr policy)
//
// A request without a value for its key (no principal, an empty header)
// counts against its client address instead, so that unauthenticated
// traffic is still limited. Values carry their kind ("c=alice",
// "i=192.0.2.1"), so a consumer named like an address never shares its
// counter; values longer than MaxValue bytes are replaced by their
// SHA-256, so keys stay short whatever a client sends.
package limitkey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/expr"
)

// MaxValue is the longest value kept as is in a key; longer ones are
// hashed.
const MaxValue = 64

// Kind is what a key is made of.
type Kind uint8

// Kinds of keys.
const (
	Consumer Kind = iota
	ClientID
	APIKey
	IP
	Route
	Header
	Expr
)

// Spec is a parsed key. The zero Spec is Consumer.
type Spec struct {
	Kind   Kind
	header string // canonical name, for Header
	value  *expr.Value
	text   string // as written, for logs and docs
}

// Parse parses the key s found at field of cfg. Empty s means consumer.
func Parse(cfg *config.Node, field, s string, now func() time.Time) (Spec, error) {
	switch {
	case s == "" || s == "consumer":
		return Spec{Kind: Consumer, text: "consumer"}, nil
	case s == "client_id":
		return Spec{Kind: ClientID, text: s}, nil
	case s == "api_key":
		return Spec{Kind: APIKey, text: s}, nil
	case s == "ip":
		return Spec{Kind: IP, text: s}, nil
	case s == "route":
		return Spec{Kind: Route, text: s}, nil
	case strings.HasPrefix(s, "header:"):
		name := strings.TrimSpace(strings.TrimPrefix(s, "header:"))
		if name == "" || strings.ContainsAny(name, " \t:\r\n") {
			return Spec{}, cfg.Errorf(field, "limitkey: %q: want header:NAME with a valid header name", s)
		}
		return Spec{Kind: Header, header: textproto.CanonicalMIMEHeaderKey(name), text: s}, nil
	case strings.HasPrefix(s, "expr:"):
		v, err := expr.CompileString(cfg, field, strings.TrimPrefix(s, "expr:"), now)
		if err != nil {
			return Spec{}, err
		}
		return Spec{Kind: Expr, value: v, text: s}, nil
	}
	return Spec{}, cfg.Errorf(field, "limitkey: unknown key %q (want consumer, client_id, api_key, ip, route, header:NAME or expr:CEL)", s)
}

// String returns the key as written in config.
func (s Spec) String() string {
	if s.text == "" {
		return "consumer"
	}
	return s.text
}

// Append appends ex's key value to dst. It allocates nothing for the
// kinds other than expr, so a caller may pass a stack buffer. An error
// comes only from evaluating an expr key.
func (s *Spec) Append(ctx context.Context, dst []byte, ex *policy.Exchange) ([]byte, error) {
	var tag byte
	var v string
	p := ex.Principal
	switch s.Kind {
	case Consumer:
		if p != nil {
			tag, v = 'c', p.Consumer
		}
	case ClientID:
		if p != nil {
			tag, v = 'k', p.ClientID
		}
	case APIKey:
		if p != nil && p.Method == "apikey" {
			tag, v = 'a', p.Consumer
		}
	case Route:
		return append(dst, "r="...), nil
	case Header:
		if vs := ex.Request.Header[s.header]; len(vs) > 0 {
			tag, v = 'h', vs[0]
		}
	case Expr:
		out, err := s.value.String(ctx, ex)
		if err != nil {
			return dst, fmt.Errorf("limitkey: %w", err)
		}
		tag, v = 'e', out
	}
	if v == "" {
		return appendIP(dst, ex), nil
	}
	return AppendValue(dst, tag, v), nil
}

// appendIP appends the client address, the fallback of every kind.
func appendIP(dst []byte, ex *policy.Exchange) []byte {
	dst = append(dst, "i="...)
	if !ex.ClientIP.IsValid() {
		return append(dst, '-')
	}
	return ex.ClientIP.AppendTo(dst)
}

// AppendValue appends the key value of kind tag for the raw value v, as
// Append does: tag, '=', then v or, when v is longer than MaxValue or
// holds bytes outside printable ASCII, "#" and v's SHA-256 in hex.
func AppendValue(dst []byte, tag byte, v string) []byte {
	dst = append(dst, tag, '=')
	if len(v) <= MaxValue && printable(v) {
		return append(dst, v...)
	}
	sum := sha256.Sum256([]byte(v))
	dst = append(dst, '#')
	return hex.AppendEncode(dst, sum[:])
}

// Tag is the tag Append puts before a value of kind k, for callers that
// look a value up by its raw form (quota usage by consumer name).
func (s Spec) Tag() byte {
	switch s.Kind {
	case ClientID:
		return 'k'
	case APIKey:
		return 'a'
	case Header:
		return 'h'
	case Expr:
		return 'e'
	case IP:
		return 'i'
	}
	return 'c'
}

// printable reports whether v is printable ASCII other than the braces
// (which would change a Redis Cluster hash tag) and ':' (the separator of
// key parts).
func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == '{' || c == '}' || c == ':' {
			return false
		}
	}
	return true
}
