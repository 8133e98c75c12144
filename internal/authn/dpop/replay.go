package dpop

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// A ReplayCache remembers the proofs already used, so that a proof
// captured on the wire cannot be sent again (RFC 9449 §11.1). It must be
// safe for concurrent use.
type ReplayCache interface {
	// Seen records jti, a key that identifies one proof (the Verifier
	// passes the key thumbprint and the proof's jti), as used until exp,
	// and reports whether it was already recorded and not expired. The
	// check and the record are one atomic step, so two concurrent uses of
	// the same proof cannot both see false. An error means the answer is
	// unknown; the Verifier then fails closed.
	Seen(ctx context.Context, jti string, exp time.Time) (bool, error)
}

// ErrReplayCacheFull is returned by MemoryReplayCache.Seen when every slot
// holds a proof that has not expired yet.
var ErrReplayCacheFull = errors.New("dpop: replay cache full")

// DefaultReplayCacheSize is the capacity of the replay cache a Verifier
// makes when Options.ReplayCache is nil.
const DefaultReplayCacheSize = 100_000

// MemoryReplayCache is a ReplayCache in this process's memory, holding at
// most a fixed number of unexpired entries. Expired entries are dropped as
// new ones arrive.
//
// When it is full of unexpired entries it refuses to record more
// (ErrReplayCacheFull) rather than forget one early: forgetting would let
// that proof be replayed. Size it for the peak rate of proofs times their
// lifetime (max age plus future skew): the default of 100,000 covers about
// 1,500 proofs per second with the default 65 s.
//
// The cache is per process: gateways behind one load balancer need a
// shared cache (a later Redis implementation) to refuse a proof replayed
// to another instance.
type MemoryReplayCache struct {
	now  func() time.Time
	size int

	mu      sync.Mutex
	entries map[string]time.Time
	byExp   expHeap
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// NewMemoryReplayCache returns a cache of at most size entries (at least 1;
// a smaller size panics) reading time from now; nil now means time.Now.
func NewMemoryReplayCache(size int, now func() time.Time) *MemoryReplayCache {
	if size < 1 {
		panic("dpop: replay cache size must be at least 1")
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, size: size, entries: make(map[string]time.Time)}
}

// Seen implements ReplayCache. An entry counts until exp, exclusive.
func (c *MemoryReplayCache) Seen(_ context.Context, key string, exp time.Time) (bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && now.Before(e) {
		return true, nil
	}
	c.expire(now)
	if len(c.entries) >= c.size {
		return false, ErrReplayCacheFull
	}
	c.entries[key] = exp
	heap.Push(&c.byExp, expEntry{key: key, exp: exp})
	return false, nil
}

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// expire drops the entries whose time is up. Caller holds mu.
func (c *MemoryReplayCache) expire(now time.Time) {
	for len(c.byExp) > 0 && !now.Before(c.byExp[0].exp) {
		e := heap.Pop(&c.byExp).(expEntry)
		delete(c.entries, e.key)
	}
}

type expEntry struct {
	key string
	exp time.Time
}

// expHeap is a min-heap of entries by expiry.
type expHeap []expEntry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expEntry)) }
func (h *expHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expEntry{}
	*h = old[:len(old)-1]
	return e
}
