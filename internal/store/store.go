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
	Allow(ctx context.Context, key string, limits []Limit, cost int) (Decision, error)
	// Close releases the backend's resources.
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
