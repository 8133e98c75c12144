// Package ratelimit is the "rate_limit" policy: GCRA limits per consumer
// (or client id, API key, address, route, header, CEL expression), several
// at once, kept exact across gateway instances by the shared store (one
// round trip to Redis per request), with the IETF RateLimit headers and a
// configured behaviour while the store is unreachable.
//
// The package is ratelimit, not rate_limit, only because Go package names have no
// underscores; the unit, its docs page and its metrics use rate_limit.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/expr"
	"github.com/gatehouse/gatehouse/internal/policy/limitkey"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Unit registers the rate_limit policy.
var Unit = policy.Unit{Name: "rate_limit", New: New}

// Denial codes.
const (
	// Code refuses a request over its limit: 429 with Retry-After.
	Code = "rate_limited"
	// CodeUnavailable refuses a request while the store is unreachable
	// and on_store_error is closed: 503 with Retry-After.
	CodeUnavailable = "rate_limit_unavailable"
)

// Limiter is a rate_limit policy. It is safe for concurrent use.
type Limiter struct {
	key      limitkey.Spec
	prefix   string // "rl:<route>:<name>:" before the key value in the store
	limits   []store.Limit
	glimits  []gcraLimit // limits, for local decisions
	fallback []gcraLimit // scaled limits, for on_store_error: local
	names    []string
	cost     int
	costExpr *expr.Value
	mode     string
	headers  bool
	now      func() time.Time

	st      store.Store // nil: decide with local only
	local   *Local      // when st is nil, or the fallback
	release func() error
	health  limitkey.Health

	// policyHeader is the RateLimit-Policy value, the same on every
	// response; a one-element slice whose capacity is its length, so that
	// it can be put in ex.ResponseHeader as it is (see addHeaders).
	policyHeader []string
	// rlPrefix holds, by limit index, the start of a RateLimit value:
	// the quoted name and ";r=", made once instead of quoting per request.
	rlPrefix []string
}

var (
	_ policy.Policy = (*Limiter)(nil)
	_ policy.Closer = (*Limiter)(nil)
)

// New builds a Limiter from cfg (see Config). With env.StateStore() a
// memory store (env.Store one, or none), limits are decided in process by a Local limiter (shared
// through env.Pool across reloads, so a reload does not refill every
// bucket); otherwise by env.Store, whose Allow is atomic across every
// gateway sharing it.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	now := env.Clock()
	s, err := decode(cfg, now)
	if err != nil {
		return nil, err
	}
	route := strings.NewReplacer("{", "_", "}", "_", ":", "_").Replace(env.Route.Name)
	l := &Limiter{
		key:      s.key,
		prefix:   "rl:" + route + ":" + s.name + ":",
		limits:   s.limits,
		glimits:  gcraLimits(s.limits),
		names:    s.names,
		cost:     s.cost,
		costExpr: s.costExpr,
		mode:     s.mode,
		headers:  s.headers,
		now:      now,
	}
	st := env.StateStore()
	if _, isMem := store.Unguarded(st).(*store.Memory); !isMem {
		l.st = st
	}
	if l.st == nil || l.mode == limitkey.FailLocal {
		// Keyed by what the buckets mean, so a reload with the same
		// limits keeps them and one with other limits starts afresh.
		poolKey := fmt.Sprintf("ratelimit:local:%s%v:%v:%g", l.prefix, l.st == nil, s.limits, s.fraction)
		l.local, l.release, err = usagepool.Acquire(env.Pool, poolKey, func() (*Local, error) { return NewLocal(), nil })
		if err != nil {
			return nil, fmt.Errorf("ratelimit: %w", err)
		}
		l.fallback = gcraLimits(scaled(s.limits, s.fraction))
	}
	l.health = limitkey.Health{Log: env.Log(), Metrics: env.Telemetry().Limit(env.Route.Name, "rate_limit", s.mode), Mode: s.mode, Now: now, Guard: limitkey.ForStore(st)}
	l.policyHeader = []string{policyHeader(s.names, s.limits)}
	for _, name := range s.names {
		l.rlPrefix = append(l.rlPrefix, strconv.Quote(name)+";r=")
	}
	return l, nil
}

// Close releases the local limiter.
func (l *Limiter) Close() error {
	if l.release != nil {
		return l.release()
	}
	return nil
}

// keyBuf sizes the stack buffer of a key value: the tag, a value of up to
// limitkey.MaxValue bytes or a hash.
const keyBuf = 96

// Apply counts the request's cost against its key's limits. Over a limit
// it refuses with 429 rate_limited and Retry-After; while the store is
// unreachable it follows on_store_error. RateLimit-Policy and RateLimit
// headers go on the response either way (unless headers: false). A key
// or cost expression that fails to evaluate fails the request closed.
func (l *Limiter) Apply(ctx context.Context, ex *policy.Exchange) error {
	var buf [keyBuf]byte
	kb, err := l.key.Append(ctx, buf[:0], ex)
	if err != nil {
		return fmt.Errorf("ratelimit: key: %w", err)
	}
	cost := l.cost
	if l.costExpr != nil {
		c, err := l.costExpr.Int(ctx, ex)
		if err != nil {
			return fmt.Errorf("ratelimit: cost_expr: %w", err)
		}
		if c < 0 || c > 1<<30 {
			return fmt.Errorf("ratelimit: cost_expr gave %d", c)
		}
		cost = int(c)
	}
	var d store.Decision
	switch {
	case l.st == nil:
		d = l.local.Allow(kb, l.now(), l.glimits, cost)
	case l.health.Skip():
		return l.degraded(ex, kb, cost)
	default:
		d, err = l.st.Allow(ctx, l.prefix+string(kb), l.limits, cost)
		if err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				return fmt.Errorf("ratelimit: %w", err)
			}
			l.health.Failed(err)
			return l.degraded(ex, kb, cost)
		}
		l.health.OK()
	}
	return l.decide(ex, d, l.limits)
}

// degraded decides while the store is unreachable.
func (l *Limiter) degraded(ex *policy.Exchange, kb []byte, cost int) error {
	l.health.Degraded()
	switch l.mode {
	case limitkey.FailOpen:
		return nil
	case limitkey.FailLocal:
		d := l.local.Allow(kb, l.now(), l.fallback, cost)
		return l.decide(ex, d, nil)
	}
	return &policy.Denial{
		Status: http.StatusServiceUnavailable,
		Code:   CodeUnavailable,
		Detail: "the rate limit cannot be checked now; retry later",
		Header: http.Header{"Retry-After": {"1"}},
		Err:    errors.New("ratelimit: store unreachable, on_store_error: closed"),
	}
}

// decide turns d into headers and, when refused, a Denial. limits are
// those d was decided on, for the RateLimit header; nil for the local
// fallback, whose reduced limits are not advertised (RateLimit-Policy
// keeps stating the real ones).
func (l *Limiter) decide(ex *policy.Exchange, d store.Decision, limits []store.Limit) error {
	if l.headers {
		l.addHeaders(ex, d)
	}
	if d.Allowed {
		return nil
	}
	den := &policy.Denial{Status: http.StatusTooManyRequests, Code: Code, Detail: "rate limit exceeded; retry later"}
	if d.RetryAfter < 0 {
		den.Detail = "the request costs more than the rate limit allows at once"
		den.Err = fmt.Errorf("ratelimit: cost above the burst of limit %s", l.names[d.Limit])
		return den
	}
	den.Header = http.Header{"Retry-After": {strconv.FormatInt(ceilSeconds(d.RetryAfter), 10)}}
	den.Err = fmt.Errorf("ratelimit: limit %s exceeded, retry after %v", l.names[d.Limit], d.RetryAfter)
	return den
}

// The header names in net/http's canonical form: decide writes them into
// ex.ResponseHeader directly, sparing Header.Add's canonicalisation of the
// spelling the draft uses (RateLimit-Policy) on every request.
const (
	headerPolicy    = "Ratelimit-Policy"
	headerRateLimit = "Ratelimit"
)

// addHeaders adds RateLimit-Policy and RateLimit for d to ex's response,
// after any values other policies added. It is ex.AddResponseHeader with
// the allocations the hot path can do without: the constant
// RateLimit-Policy value is shared between requests when it is the first
// of its name (safe: its slice has no spare capacity, so a later append
// copies, and the gateway copies values out of ResponseHeader rather than
// keeping the slice), and the RateLimit value and its slice are one
// allocation.
func (l *Limiter) addHeaders(ex *policy.Exchange, d store.Decision) {
	v := rateLimitValue(l.rlPrefix[d.Limit], d)
	h := ex.ResponseHeader
	if h == nil {
		// The common case: the first policy to add headers.
		h = make(http.Header, 4)
		h[headerPolicy], h[headerRateLimit] = l.policyHeader, v
		ex.ResponseHeader = h
		return
	}
	if vs := h[headerPolicy]; vs == nil {
		h[headerPolicy] = l.policyHeader
	} else {
		h[headerPolicy] = append(vs, l.policyHeader[0])
	}
	if vs := h[headerRateLimit]; vs == nil {
		h[headerRateLimit] = v
	} else {
		h[headerRateLimit] = append(vs, v[0])
	}
}

// ceilSeconds rounds d up to whole seconds, at least 1 for any positive d.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// policyHeader is the RateLimit-Policy value of draft-ietf-httpapi-
// ratelimit-headers (revisions 08 and later): one list member per limit,
// `"name";q=<rate>;w=<period in seconds>`.
func policyHeader(names []string, limits []store.Limit) string {
	var b []byte
	for i, l := range limits {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendQuote(b, names[i])
		b = append(b, ";q="...)
		b = strconv.AppendInt(b, int64(l.Rate), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, max(1, ceilSeconds(l.Period)), 10)
	}
	return string(b)
}

// rlValue is a RateLimit header value together with the slice that holds
// it in a header, so that both take one allocation. Its buffer fits the
// value of a limit name of up to some 25 bytes; a longer name's value is
// built and allocated apart.
type rlValue struct {
	vs  [1]string
	buf [48]byte
}

// rateLimitValue returns the RateLimit value for the deciding limit, whose
// rlPrefix is prefix, as a one-element header value slice with no spare
// capacity (appending to it copies): `"name";r=<remaining>;t=<seconds>`,
// where t is, for an allowed request, when the limit is full again, and
// for a refused one, when this request could pass (Retry-After).
func rateLimitValue(prefix string, d store.Decision) []string {
	t := d.ResetAfter
	if !d.Allowed && d.RetryAfter > 0 {
		t = d.RetryAfter
	}
	v := new(rlValue)
	b := append(v.buf[:0], prefix...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(t), 10)
	if &b[0] == &v.buf[0] {
		// Still in v.buf, which nothing else will write: the string can
		// share it, and keeps v (slice and buffer) alive with it.
		v.vs[0] = unsafe.String(&b[0], len(b))
	} else {
		v.vs[0] = string(b)
	}
	return v.vs[:1:1]
}
