// Package store is Gatehouse's shared state behind one small interface:
// rate-limit buckets, quota counters, replay caches (nonces, jti),
// revocations and keys. Backends:
//
//   - memory: one process, lost on restart (tests, single node without
//     persistence needs);
//   - file: one node, kept in an embedded single-file database so that
//     counters and revocations survive a restart (the default);
//   - redis: several gateway instances share exact state.
//
// Every method is atomic with respect to every other user of the same
// backend, on any instance: that is what makes limits exact across
// instances. Keys are opaque strings chosen by the caller, namespaced by
// feature ("rl:", "quota:", "nonce:"); backends may prefix them further.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get for a key that is absent or expired.
var ErrNotFound = errors.New("store: not found")

// ErrUnavailable wraps failures to reach the backend (Redis down), so that
// callers can apply their configured failure mode (fail closed, fail open,
// local fallback) with errors.Is.
var ErrUnavailable = errors.New("store: unavailable")

// ErrClosed is returned by every method of a store after Close.
var ErrClosed = errors.New("store: closed")

// ErrNotInteger is returned by IncrBy when the value under key is not a
// decimal integer (it was written with Set).
var ErrNotInteger = errors.New("store: value is not an integer")

// Store is shared state. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key. ttl <= 0 means no expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value under key only if key is absent (or expired) and
	// reports whether it stored. Replay caches use it: the first use of a
	// nonce wins, on every instance.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key. An absent key is not an error.
	Delete(ctx context.Context, key string) error
	// IncrBy adds n (which may be negative) to the integer counter under
	// key, creating it at 0 with expiry ttl (ttl <= 0: none) when absent,
	// and returns the new value. An existing counter keeps its expiry.
	IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
	// Allow takes one GCRA (generic cell rate algorithm) decision over
	// several limits at once, in one atomic step (one round trip to Redis):
	// may cost units pass now under every limit for key? The limits are
	// independent buckets (key plus the limit's index). If all allow, all
	// consume the units; if any refuses, none consumes anything. cost 0
	// only inspects. limits must not be empty.
	//
	// A cost larger than a limit's burst can never pass: the decision is
	// refused with RetryAfter -1. Invalid limits (Rate or Period <= 0,
	// Burst < 0) or a negative cost are an error.
	Allow(ctx context.Context, key string, limits []Limit, cost int) (Decision, error)
	// Scan calls fn for every live key starting with prefix, with its
	// value (a counter's value is its decimal text), until fn returns
	// false. Order is unspecified; keys written or deleted during the scan
	// may or may not be visited, every key live throughout it is visited
	// once. Allow's buckets are not keys and are never visited. fn may
	// call the store. A gateway uses it at start to load what must survive
	// a restart (revocations), and again after a resync signal.
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error
	// Publish sends msg to every current subscriber of channel, on every
	// instance sharing the backend. Delivery is at most once and in order
	// per publisher; nothing is kept for subscribers that come later.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe delivers the messages published on channel from the moment
	// it returns (it returns once the subscription is active, so that a
	// Scan made after it misses nothing). A message is never nil: a nil
	// receive is the resync signal, sent when messages may have been lost
	// (a Redis connection was re-established after an outage, or the
	// subscriber fell too far behind); the subscriber should Scan again.
	// The channel is closed when ctx ends or the store closes.
	Subscribe(ctx context.Context, channel string) (<-chan []byte, error)
	// Close releases the backend's resources and ends every subscription.
	// Later calls of any method return ErrClosed. Close is idempotent.
	Close() error
}

// Limit is a rate: Rate units per Period, with bursts of up to Burst units.
type Limit struct {
	Rate   int
	Period time.Duration
	// Burst is the most units that may pass at once; 0 means Rate.
	Burst int
}

// Interval is the time one unit costs: Period / Rate.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// BurstOrRate returns Burst, or Rate when Burst is 0.
func (l Limit) BurstOrRate() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Rate
}

// Decision is the outcome of Allow: that of the deciding limit, which is
// the first refusing limit, or when all allow the one with the fewest
// remaining units.
type Decision struct {
	// Limit is the index of the deciding limit.
	Limit int
	// Allowed reports whether the units passed.
	Allowed bool
	// Remaining is how many units could pass right after this decision.
	Remaining int
	// RetryAfter, when not allowed, is how long until cost units would pass.
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again (all of Burst
	// available), for the RateLimit header's reset.
	ResetAfter time.Duration
}
