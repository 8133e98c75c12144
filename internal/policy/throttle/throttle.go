// Package throttle is the "throttle" policy: bandwidth shaping of request
// and response bodies per consumer (a slow transfer, not an error),
// shared by all of the consumer's concurrent requests, and limits on the
// requests in flight per consumer and per upstream.
//
// Both are per gateway instance: bandwidth is a property of each
// instance's links, and in-flight counts end with the process that holds
// them, so no shared store is involved (a crashed instance cannot leak
// slots into it).
package throttle

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Unit registers the throttle policy.
var Unit = policy.Unit{Name: "throttle", New: New}

// Code refuses a request over a concurrency limit: 429 for the
// consumer's limit, 503 for the upstream's, both with Retry-After: 1.
const Code = "concurrency_limited"

// Throttle is a throttle policy. It is safe for concurrent use.
type Throttle struct {
	s       *settings
	st      *state
	release func() error
}

var (
	_ policy.Policy         = (*Throttle)(nil)
	_ policy.Closer         = (*Throttle)(nil)
	_ policy.ResponseFilter = (*Throttle)(nil)
)

// state is what outlives a reload: the buckets and the in-flight counts
// (requests started under the old config still hold their slots).
type state struct {
	mu       sync.Mutex
	buckets  map[string]*bucketPair
	inflight map[string]int
	upstream atomic.Int64
}

// bucketPair is one key's request and response buckets and the number
// of requests using them, so idle keys are dropped.
type bucketPair struct {
	up, down *rate.Limiter
	users    int
}

func (s *state) Close() error { return nil }

// New builds a Throttle from cfg (see Config). Its state is shared
// through env.Pool by the route's throttle across reloads.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	s, err := decode(cfg, env.Clock())
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("throttle:%s:%s:%d:%d", env.Route.Name, s.key, s.rate, s.burst)
	st, release, err := usagepool.Acquire(env.Pool, key, func() (*state, error) {
		return &state{buckets: map[string]*bucketPair{}, inflight: map[string]int{}}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return &Throttle{s: s, st: st, release: release}, nil
}

// Close releases the shared state.
func (t *Throttle) Close() error { return t.release() }

// Apply takes a concurrency slot for the request (refusing with
// concurrency_limited when none is free) and, with a bandwidth, paces the
// request body as the upstream reads it and the response body as it is
// written, through the key's shared buckets. Everything is given back
// when the request ends.
func (t *Throttle) Apply(ctx context.Context, ex *policy.Exchange) error {
	var buf [96]byte
	kb, err := t.s.key.Append(ctx, buf[:0], ex)
	if err != nil {
		return fmt.Errorf("throttle: key: %w", err)
	}
	key := string(kb)
	if t.s.upstream > 0 {
		if t.st.upstream.Add(1) > int64(t.s.upstream) {
			t.st.upstream.Add(-1)
			return deny(http.StatusServiceUnavailable, "too many requests in flight to the upstream", "upstream")
		}
		ex.OnDone(func() { t.st.upstream.Add(-1) })
	}
	if t.s.concurrency == 0 && t.s.rate == 0 {
		return nil
	}
	t.st.mu.Lock()
	if t.s.concurrency > 0 {
		if t.st.inflight[key] >= t.s.concurrency {
			t.st.mu.Unlock()
			return deny(http.StatusTooManyRequests, "too many requests in flight", "consumer")
		}
		t.st.inflight[key]++
	}
	var bp *bucketPair
	if t.s.rate > 0 {
		bp = t.st.buckets[key]
		if bp == nil {
			bp = &bucketPair{up: rate.NewLimiter(rate.Limit(t.s.rate), t.s.burst), down: rate.NewLimiter(rate.Limit(t.s.rate), t.s.burst)}
			t.st.buckets[key] = bp
		}
		bp.users++
	}
	t.st.mu.Unlock()
	ex.OnDone(func() { t.done(key, bp) })

	if bp == nil {
		return nil
	}
	rctx := ex.Request.Context()
	if b := ex.Request.Body; t.s.request && b != nil && b != http.NoBody {
		ex.Request.Body = &pacedBody{ReadCloser: b, lim: bp.up, ctx: rctx, burst: t.s.burst}
	}
	if t.s.response {
		ex.SetValue(t, &pacedWriter{lim: bp.down, ctx: rctx, burst: t.s.burst})
	}
	return nil
}

// FilterResponse paces the response body through the key's bucket when
// Apply took one; it holds nothing back.
func (t *Throttle) FilterResponse(ex *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	p, _ := ex.Value(t).(*pacedWriter)
	if p == nil {
		return next
	}
	p.ResponseWriter = next
	return p
}

// done gives back the request's slot and its use of the buckets; a key
// nobody uses any more is forgotten (its buckets were full or about to
// be: a new request starts with a full burst, as after any idle spell).
func (t *Throttle) done(key string, bp *bucketPair) {
	t.st.mu.Lock()
	defer t.st.mu.Unlock()
	if t.s.concurrency > 0 {
		if n := t.st.inflight[key] - 1; n > 0 {
			t.st.inflight[key] = n
		} else {
			delete(t.st.inflight, key)
		}
	}
	if bp != nil {
		if bp.users--; bp.users == 0 && t.st.buckets[key] == bp {
			delete(t.st.buckets, key)
		}
	}
}

func deny(status int, detail, which string) error {
	return &policy.Denial{
		Status: status,
		Code:   Code,
		Detail: detail,
		Header: http.Header{"Retry-After": {"1"}},
		Err:    fmt.Errorf("throttle: %s concurrency limit reached", which),
	}
}

// pacedBody paces reads of a request body: it reads at most burst bytes
// at a time and waits for as many tokens as it read.
type pacedBody struct {
	io.ReadCloser
	lim   *rate.Limiter
	ctx   context.Context
	burst int
}

func (p *pacedBody) Read(b []byte) (int, error) {
	if len(b) > p.burst {
		b = b[:p.burst]
	}
	n, err := p.ReadCloser.Read(b)
	if n > 0 {
		if werr := p.lim.WaitN(p.ctx, n); werr != nil && err == nil {
			err = fmt.Errorf("throttle: %w", werr)
		}
	}
	return n, err
}

// pacedWriter paces writes of a response body in pieces of at most burst
// bytes, waiting for each piece's tokens before writing it.
type pacedWriter struct {
	policy.ResponseWriter
	lim   *rate.Limiter
	ctx   context.Context
	burst int
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), p.burst)]
		if err := p.lim.WaitN(p.ctx, len(chunk)); err != nil {
			return written, fmt.Errorf("throttle: %w", err)
		}
		n, err := p.ResponseWriter.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}
