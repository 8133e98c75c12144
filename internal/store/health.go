package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of HealthOptions.
const (
	DefaultProbeInterval = 200 * time.Millisecond
	DefaultProbeConfirm  = 3
	DefaultProbeTimeout  = time.Second
)

// HealthOptions configure Guard.
type HealthOptions struct {
	// Interval is the pause between recovery probes while the store is
	// down. 0: DefaultProbeInterval.
	Interval time.Duration
	// Confirm is how many probes in a row must succeed before the store
	// is up again. 0: DefaultProbeConfirm.
	Confirm int
	// Timeout bounds one probe. 0: DefaultProbeTimeout.
	Timeout time.Duration
	// OnChange is told of each transition, in order and never two at
	// once: up false with the error that took the store down, then up
	// true once probes confirm recovery. It must not block for long
	// (it logs and sets metrics). Nil: nothing is told.
	OnChange func(up bool, err error)
	// Trace, when set, wraps each call of Get, Set, SetNX, Delete, IncrBy
	// and Allow in a span of the caller's trace (internal/tracing): it
	// returns the context for the call and the function ending the span
	// with the call's error. Nil: nothing (tracing off).
	Trace func(ctx context.Context, op string) (context.Context, func(error))
}

// noTrace ends no span.
func noTrace(error) {}

// trace starts op's span when there is a Trace hook.
func (g *Guarded) trace(ctx context.Context, op string) (context.Context, func(error)) {
	if g.opt.Trace == nil {
		return ctx, noTrace
	}
	return g.opt.Trace(ctx, op)
}

// Guarded is a Store whose reachability is decided in one place for every
// user of it (all limit policies, replay caches, the token services), so
// that one outage is one transition down and one up, whatever the number
// of policies and requests.
//
// The first call that fails with ErrUnavailable takes the store down.
// While it is down, every call fails at once with ErrUnavailable, without
// touching the backend (a store that hangs adds no timeout to requests),
// and a probe (a Get of a key nobody writes) runs every Interval; the
// store is up again after Confirm probes in a row succeed. A confirmed
// recovery matters with Redis: after a burst of failed dials go-redis
// answers with its last dial error, without dialing, until a background
// dial succeeds, so the first success alone does not mean the next call
// succeeds.
//
// A failure of a call that began before the latest recovery does not take
// the store down again: it is the old outage's, not a new one.
//
// Subscribe is passed through: subscriptions reconnect by themselves and
// signal a resync (see Store).
type Guarded struct {
	Store
	opt HealthOptions

	mu      sync.Mutex // serializes transitions and OnChange
	epoch   atomic.Uint64
	down    atomic.Bool
	lastErr atomic.Pointer[error]
	downs   atomic.Uint64
	ups     atomic.Uint64

	ctx    context.Context // ends at Close: stops the probe
	cancel context.CancelFunc
	probes sync.WaitGroup
}

// probeKey is read by the recovery probe; it is never written, so a
// reachable store answers ErrNotFound.
const probeKey = "gatehouse:health-probe"

// Guard returns s with its health tracked as Guarded describes. Closing
// the result stops its probe and closes s.
func Guard(s Store, opt HealthOptions) *Guarded {
	if opt.Interval <= 0 {
		opt.Interval = DefaultProbeInterval
	}
	if opt.Confirm <= 0 {
		opt.Confirm = DefaultProbeConfirm
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Guarded{Store: s, opt: opt, ctx: ctx, cancel: cancel}
}

// Up reports whether the store is considered reachable.
func (g *Guarded) Up() bool { return !g.down.Load() }

// Transitions returns how many times the store went down and came back up.
func (g *Guarded) Transitions() (downs, ups uint64) { return g.downs.Load(), g.ups.Load() }

// begin returns the epoch a call starts in, or an error when the store is
// down and the call must not be made.
func (g *Guarded) begin() (uint64, error) {
	if g.down.Load() {
		cause := errors.New("down")
		if p := g.lastErr.Load(); p != nil {
			cause = *p
		}
		return 0, fmt.Errorf("%w: store down (waiting for probes to confirm recovery): %w", ErrUnavailable, unwrapUnavailable(cause))
	}
	return g.epoch.Load(), nil
}

// unwrapUnavailable keeps err's text without wrapping ErrUnavailable twice.
func unwrapUnavailable(err error) error { return errors.New(err.Error()) }

// end looks at err of a call begun in epoch e: an unreachable store takes
// it down, once.
func (g *Guarded) end(e uint64, err error) {
	if err == nil || !errors.Is(err, ErrUnavailable) {
		return
	}
	if g.down.Load() || g.epoch.Load() != e {
		return // already down, or the failure of an outage already over
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down.Load() || g.epoch.Load() != e || g.ctx.Err() != nil {
		return
	}
	g.lastErr.Store(&err)
	g.down.Store(true)
	g.downs.Add(1)
	if g.opt.OnChange != nil {
		g.opt.OnChange(false, err)
	}
	g.probes.Add(1)
	go g.probe()
}

// probe runs while the store is down and brings it up after Confirm
// successes in a row.
func (g *Guarded) probe() {
	defer g.probes.Done()
	t := time.NewTicker(g.opt.Interval)
	defer t.Stop()
	ok := 0
	for ok < g.opt.Confirm {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(g.ctx, g.opt.Timeout)
		_, err := g.Store.Get(ctx, probeKey)
		cancel()
		if err == nil || errors.Is(err, ErrNotFound) {
			ok++
			continue
		}
		ok = 0
		if errors.Is(err, ErrClosed) {
			return
		}
		g.lastErr.Store(&err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx.Err() != nil {
		return
	}
	g.epoch.Add(1)
	g.down.Store(false)
	g.ups.Add(1)
	if g.opt.OnChange != nil {
		g.opt.OnChange(true, nil)
	}
}

// Get implements Store.
func (g *Guarded) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := g.begin()
	if err != nil {
		return nil, err
	}
	ctx, done := g.trace(ctx, "get")
	v, err := g.Store.Get(ctx, key)
	done(err)
	g.end(e, err)
	return v, err
}

// Set implements Store.
func (g *Guarded) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	e, err := g.begin()
	if err != nil {
		return err
	}
	ctx, done := g.trace(ctx, "set")
	err = g.Store.Set(ctx, key, value, ttl)
	done(err)
	g.end(e, err)
	return err
}

// SetNX implements Store.
func (g *Guarded) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	e, err := g.begin()
	if err != nil {
		return false, err
	}
	ctx, done := g.trace(ctx, "setnx")
	ok, err := g.Store.SetNX(ctx, key, value, ttl)
	done(err)
	g.end(e, err)
	return ok, err
}

// Delete implements Store.
func (g *Guarded) Delete(ctx context.Context, key string) error {
	e, err := g.begin()
	if err != nil {
		return err
	}
	ctx, done := g.trace(ctx, "delete")
	err = g.Store.Delete(ctx, key)
	done(err)
	g.end(e, err)
	return err
}

// IncrBy implements Store.
func (g *Guarded) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	e, err := g.begin()
	if err != nil {
		return 0, err
	}
	ctx, done := g.trace(ctx, "incrby")
	v, err := g.Store.IncrBy(ctx, key, n, ttl)
	done(err)
	g.end(e, err)
	return v, err
}

// Allow implements Store.
func (g *Guarded) Allow(ctx context.Context, key string, limits []Limit, cost int) (Decision, error) {
	e, err := g.begin()
	if err != nil {
		return Decision{}, err
	}
	ctx, done := g.trace(ctx, "allow")
	d, err := g.Store.Allow(ctx, key, limits, cost)
	done(err)
	g.end(e, err)
	return d, err
}

// Scan implements Store.
func (g *Guarded) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	e, err := g.begin()
	if err != nil {
		return err
	}
	err = g.Store.Scan(ctx, prefix, fn)
	g.end(e, err)
	return err
}

// Publish implements Store.
func (g *Guarded) Publish(ctx context.Context, channel string, msg []byte) error {
	e, err := g.begin()
	if err != nil {
		return err
	}
	err = g.Store.Publish(ctx, channel, msg)
	g.end(e, err)
	return err
}

// Stop stops the probe, leaving the guarded store open (for a store the
// caller was given and does not own). The store's state stays as it was.
func (g *Guarded) Stop() {
	g.mu.Lock()
	g.cancel()
	g.mu.Unlock()
	g.probes.Wait()
}

// Close stops the probe and closes the store.
func (g *Guarded) Close() error {
	g.Stop()
	return g.Store.Close()
}

// Unguarded returns the store s guards, or s itself.
func Unguarded(s Store) Store {
	if g, ok := s.(*Guarded); ok {
		return g.Store
	}
	return s
}
