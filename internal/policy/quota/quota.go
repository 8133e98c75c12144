// Package quota is the "quota" policy: requests and bytes (request plus
// response body bytes, counted as they stream) per calendar period in a
// time zone, per consumer, with tiers, kept in the shared store so that
// counts are exact across instances and survive restarts.
package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/limitkey"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Unit registers the quota policy.
var Unit = policy.Unit{Name: "quota", New: New}

// Denial codes.
const (
	// Code refuses a request when the period's quota is used up: 429
	// with Retry-After until the period ends.
	Code = "quota_exceeded"
	// CodeUnavailable refuses while the store is unreachable and
	// on_store_error is closed: 503.
	CodeUnavailable = "quota_unavailable"
)

// Response headers.
const (
	HeaderLimit          = "X-Quota-Limit"
	HeaderRemaining      = "X-Quota-Remaining"
	HeaderReset          = "X-Quota-Reset"
	HeaderBytesLimit     = "X-Quota-Bytes-Limit"
	HeaderBytesRemaining = "X-Quota-Bytes-Remaining"
)

// flushEvery is how many counted bytes a request holds before adding them
// to the store mid-stream; the rest is added when the request ends.
const flushEvery = 1 << 20

// grace keeps a counter a little past its period's end, so that bytes of
// a request still streaming at the boundary land in a live counter.
const grace = 10 * time.Minute

// Quota is a quota policy. It is safe for concurrent use.
type Quota struct {
	s      *settings
	prefix string // "quota:<route>:<name>:"
	st     store.Store
	now    func() time.Time
	health limitkey.Health
}

var (
	_ policy.Policy         = (*Quota)(nil)
	_ policy.ResponseFilter = (*Quota)(nil)
)

// New builds a Quota from cfg (see Config). Counters live in env.Store
// (nil: a memory store of its own, for tests).
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	now := env.Clock()
	s, err := decode(cfg, now)
	if err != nil {
		return nil, err
	}
	st := env.StateStore()
	route := strings.NewReplacer("{", "_", "}", "_", ":", "_").Replace(env.Route.Name)
	q := &Quota{s: s, prefix: "quota:" + route + ":" + s.name + ":", st: st, now: now}
	q.health = limitkey.Health{Log: env.Log(), Metrics: env.Telemetry().Limit(env.Route.Name, "quota", s.mode), Mode: s.mode, Now: now, Guard: limitkey.ForStore(st)}
	return q, nil
}

// limitsFor returns the quotas of p's tier, or the defaults.
func (q *Quota) limitsFor(p *policy.Principal) limits {
	if p != nil && len(q.s.tiers) > 0 {
		if t, ok := p.Claims[q.s.tierClaim].(string); ok {
			if l, ok := q.s.tiers[t]; ok {
				return l
			}
		}
	}
	return q.s.def
}

// keys returns the request and byte counter keys of key value kb for the
// period starting at start.
func (q *Quota) keys(kb []byte, start time.Time) (req, bytes string) {
	var a [128]byte
	b := append(a[:0], q.prefix...)
	b = strconv.AppendInt(b, start.Unix(), 10)
	b = append(b, ':')
	b = append(b, kb...)
	k := string(b)
	return "r:" + k, "b:" + k
}

// Apply refuses the request with 429 quota_exceeded when the period's
// request quota is used up, or its byte quota was reached by earlier
// requests; otherwise it counts the request and, with a byte quota,
// counts the request and response body bytes as they stream. Byte quotas
// are checked at admission: an admitted request is never cut off, so the
// request that crosses the quota completes.
func (q *Quota) Apply(ctx context.Context, ex *policy.Exchange) error {
	var buf [96]byte
	kb, err := q.s.key.Append(ctx, buf[:0], ex)
	if err != nil {
		return fmt.Errorf("quota: key: %w", err)
	}
	lim := q.limitsFor(ex.Principal)
	if lim == (limits{}) {
		return nil
	}
	now := q.now()
	start, end := bounds(q.s.period, q.s.loc, now)
	ttl := end.Sub(now) + grace
	reqKey, bytesKey := q.keys(kb, start)
	if q.health.Skip() {
		return q.degraded()
	}
	var usedBytes, usedReq int64
	if lim.bytes > 0 {
		usedBytes, err = q.st.IncrBy(ctx, bytesKey, 0, ttl)
		if err != nil {
			return q.failed(err)
		}
		if usedBytes >= lim.bytes {
			q.health.OK()
			q.headers(ex, lim, 0, usedBytes, end.Sub(now))
			return q.deny(end.Sub(now), "byte")
		}
	}
	if lim.requests > 0 {
		usedReq, err = q.st.IncrBy(ctx, reqKey, 1, ttl)
		if err != nil {
			return q.failed(err)
		}
		if usedReq > lim.requests {
			// Take the refused request back, so the counter says what
			// was admitted (a tier raised mid-period then applies at
			// once). Best effort: a failure only over-counts refusals.
			q.st.IncrBy(ctx, reqKey, -1, ttl) //nolint:errcheck
			q.health.OK()
			q.headers(ex, lim, lim.requests, usedBytes, end.Sub(now))
			return q.deny(end.Sub(now), "request")
		}
	}
	q.health.OK()
	q.headers(ex, lim, usedReq, usedBytes, end.Sub(now))
	if lim.bytes > 0 {
		q.meter(ex, bytesKey, ttl)
	}
	return nil
}

func (q *Quota) failed(err error) error {
	if !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("quota: %w", err)
	}
	q.health.Failed(err)
	return q.degraded()
}

func (q *Quota) degraded() error {
	q.health.Degraded()
	if q.s.mode == limitkey.FailOpen {
		return nil
	}
	return &policy.Denial{
		Status: http.StatusServiceUnavailable,
		Code:   CodeUnavailable,
		Detail: "the quota cannot be checked now; retry later",
		Header: http.Header{"Retry-After": {"1"}},
		Err:    errors.New("quota: store unreachable, on_store_error: closed"),
	}
}

func (q *Quota) deny(untilEnd time.Duration, what string) error {
	return &policy.Denial{
		Status: http.StatusTooManyRequests,
		Code:   Code,
		Detail: "quota exceeded for this period",
		Header: http.Header{"Retry-After": {strconv.FormatInt(ceilSeconds(untilEnd), 10)}},
		Err:    fmt.Errorf("quota: %s quota of the %s used up", what, q.s.period),
	}
}

func (q *Quota) headers(ex *policy.Exchange, lim limits, usedReq, usedBytes int64, untilEnd time.Duration) {
	if !q.s.headers {
		return
	}
	if lim.requests > 0 {
		ex.AddResponseHeader(HeaderLimit, strconv.FormatInt(lim.requests, 10))
		ex.AddResponseHeader(HeaderRemaining, strconv.FormatInt(max(0, lim.requests-usedReq), 10))
	}
	if lim.bytes > 0 {
		ex.AddResponseHeader(HeaderBytesLimit, strconv.FormatInt(lim.bytes, 10))
		ex.AddResponseHeader(HeaderBytesRemaining, strconv.FormatInt(max(0, lim.bytes-usedBytes), 10))
	}
	ex.AddResponseHeader(HeaderReset, strconv.FormatInt(ceilSeconds(untilEnd), 10))
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// meter counts ex's request and response body bytes into key: the
// request body as the upstream reads it, the response body as it is
// written to the client.
func (q *Quota) meter(ex *policy.Exchange, key string, ttl time.Duration) {
	m := &meter{q: q, key: key, ttl: ttl, ctx: context.WithoutCancel(ex.Request.Context())}
	if b := ex.Request.Body; b != nil && b != http.NoBody {
		ex.Request.Body = &countingBody{ReadCloser: b, m: m}
	}
	ex.SetValue(q, m)
	ex.OnDone(m.flush)
}

// FilterResponse counts the response body's bytes, as the client is sent
// them, when Apply metered the request; it holds nothing back.
func (q *Quota) FilterResponse(ex *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	m, _ := ex.Value(q).(*meter)
	if m == nil {
		return next
	}
	m.ResponseWriter = next
	return m
}

// meter is one request's byte count. The request body is read on the
// proxy's transport goroutine while the response may be written on the
// handler's: the count is atomic.
type meter struct {
	q       *Quota
	key     string
	ttl     time.Duration
	ctx     context.Context
	pending atomic.Int64
	// ResponseWriter is the writer below the meter's FilterResponse.
	policy.ResponseWriter
}

func (m *meter) add(n int) {
	if n > 0 && m.pending.Add(int64(n)) >= flushEvery {
		m.flush()
	}
}

// flush adds the pending count to the store. A failure loses these bytes
// from the count (logged by the health tracker), never the request.
func (m *meter) flush() {
	n := m.pending.Swap(0)
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, 2*time.Second)
	defer cancel()
	if _, err := m.q.st.IncrBy(ctx, m.key, n, m.ttl); err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			m.q.health.Failed(err)
			return
		}
		m.q.health.Log.Error("quota: counting bytes", "error", err)
	}
}

func (m *meter) Write(b []byte) (int, error) {
	n, err := m.ResponseWriter.Write(b)
	m.add(n)
	return n, err
}

type countingBody struct {
	io.ReadCloser
	m *meter
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.m.add(n)
	return n, err
}

// Usage is a consumer's use of a quota in the current period.
type Usage struct {
	// Start and End bound the current period.
	Start, End time.Time
	// Requests and Bytes are what was used; RequestLimit and ByteLimit
	// the quotas (0: not limited).
	Requests, RequestLimit int64
	Bytes, ByteLimit       int64
}

// Usage reports the current period's use by the key value value (a
// consumer name for key: consumer, the header value for key: header:...,
// an address for key: ip) under tier ("" for the default quotas), for
// the admin API. It reads the store and changes nothing.
func (q *Quota) Usage(ctx context.Context, value, tier string) (Usage, error) {
	return q.usage(ctx, value, tier)
}

// ConsumerUsage reports, for the admin API and the console (it implements
// policy.UsageReporter), what consumer used of its default-tier quotas in
// the current period. A quota keyed by something else than the consumer
// or its client id (an address, a header) has nothing to say about a
// consumer name: it returns nothing.
func (q *Quota) ConsumerUsage(ctx context.Context, consumer string) ([]policy.Usage, error) {
	if k := q.s.key.Kind; k != limitkey.Consumer && k != limitkey.ClientID {
		return nil, nil
	}
	u, err := q.usage(ctx, consumer, "")
	if err != nil {
		return nil, err
	}
	var out []policy.Usage
	if u.RequestLimit > 0 {
		out = append(out, policy.Usage{Name: "requests per " + q.s.period, Used: u.Requests, Limit: u.RequestLimit, Unit: "requests", Resets: u.End})
	}
	if u.ByteLimit > 0 {
		out = append(out, policy.Usage{Name: "bytes per " + q.s.period, Used: u.Bytes, Limit: u.ByteLimit, Unit: "bytes", Resets: u.End})
	}
	return out, nil
}

var _ policy.UsageReporter = (*Quota)(nil)

func (q *Quota) usage(ctx context.Context, value, tier string) (Usage, error) {
	now := q.now()
	start, end := bounds(q.s.period, q.s.loc, now)
	lim := q.s.def
	if l, ok := q.s.tiers[tier]; ok && tier != "" {
		lim = l
	}
	var buf [96]byte
	kb := limitkey.AppendValue(buf[:0], q.s.key.Tag(), value)
	reqKey, bytesKey := q.keys(kb, start)
	u := Usage{Start: start, End: end, RequestLimit: lim.requests, ByteLimit: lim.bytes}
	var err error
	if u.Requests, err = q.read(ctx, reqKey); err != nil {
		return Usage{}, err
	}
	if u.Bytes, err = q.read(ctx, bytesKey); err != nil {
		return Usage{}, err
	}
	return u, nil
}

func (q *Quota) read(ctx context.Context, key string) (int64, error) {
	v, err := q.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("quota: %w", err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("quota: counter %s: %w", key, err)
	}
	return n, nil
}
