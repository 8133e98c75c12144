package introspect

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// key identifies a token in the cache and in flight: its SHA-256, so that
// the raw token is never kept.
type key = [sha256.Size]byte

// cache is a bounded map from token hashes to answers with an expiry per
// entry. It is sharded so that lookups on many cores do not contend on one
// lock. When a shard is full, an insert first drops expired entries among a
// few it looks at and otherwise evicts one of those: Go's randomised map
// iteration makes that a random eviction, which needs no bookkeeping on
// the read path (an LRU would write on every hit).
type cache struct {
	shards   []shard
	perShard int
}

type shard struct {
	mu sync.RWMutex
	m  map[key]entry
}

type entry struct {
	v       *answer
	expires time.Time
}

// evictScan is how many entries a full shard looks at to find room.
const evictScan = 8

// newCache returns a cache of about size entries (rounded up to a multiple
// of the shard count).
func newCache(size int) *cache {
	n := 16
	if size < 256 {
		n = 1
	}
	c := &cache{shards: make([]shard, n), perShard: (size + n - 1) / n}
	for i := range c.shards {
		c.shards[i].m = make(map[key]entry)
	}
	return c
}

func (c *cache) shard(k *key) *shard { return &c.shards[int(k[0])%len(c.shards)] }

// get returns the answer for k if it has not expired at now.
func (c *cache) get(k *key, now time.Time) (*answer, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.v, true
}

// put stores v for k until expires.
func (c *cache) put(k *key, v *answer, expires, now time.Time) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		var victim key
		seen, freed := 0, false
		for ek, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, ek)
				freed = true
			} else if seen == 0 {
				victim = ek
			}
			if seen++; seen == evictScan {
				break
			}
		}
		if !freed {
			delete(s.m, victim)
		}
	}
	s.m[*k] = entry{v: v, expires: expires}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// flight collapses concurrent introspections of the same token into one.
type flight struct {
	mu    sync.Mutex
	calls map[key]*call
	// joined counts callers that joined a call in flight, for tests.
	joined int
}

type call struct {
	done chan struct{}
	v    *answer
	err  error
}

// do runs fn once for all callers asking for k at the same time. fn runs on
// its own goroutine with a context that outlives any one caller's (a
// client hanging up must not fail the others' introspection); each caller
// waits until fn is done or its own ctx ends.
func (f *flight) do(ctx context.Context, k *key, fn func() (*answer, error)) (*answer, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[key]*call)
	}
	c, ok := f.calls[*k]
	if ok {
		f.joined++
	} else {
		c = &call{done: make(chan struct{})}
		kk := *k
		f.calls[kk] = c
		go func() {
			c.v, c.err = fn()
			f.mu.Lock()
			delete(f.calls, kk)
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
