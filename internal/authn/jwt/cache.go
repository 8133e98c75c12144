package jwt

import (
	"crypto/sha256"
	"sync"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// key identifies a token in the cache: its SHA-256, so that the token
// itself is never kept.
type key = [sha256.Size]byte

// verified is what verifying a token established; cached and shared by
// every request bearing the same token, so read-only.
type verified struct {
	principal *policy.Principal
	// until is when the cached verdict ends, in Unix nanoseconds: the
	// token's exp, or iat+max_age when that comes first.
	until int64
	// key is the key the signature was checked with; when a refresh of the
	// key set drops it, the verdict is no longer honoured.
	key *rawKey
	jti string
	// jkt and x5t are the token's binding (cnf.jkt, RFC 9449 §6.1;
	// cnf["x5t#S256"], RFC 8705 §3.1), proven on every request.
	jkt, x5t string
}

// cache is a bounded map from token hashes to verdicts. It is sharded so
// that lookups on many cores do not contend on one lock. When a shard is
// full, an insert first drops expired entries among a few it looks at and
// otherwise evicts one of those: Go's randomised map iteration makes that
// a random eviction, which needs no bookkeeping on the read path (an LRU
// would write on every hit).
type cache struct {
	shards   []shard
	perShard int
}

type shard struct {
	mu sync.RWMutex
	m  map[key]*verified
}

// evictScan is how many entries a full shard looks at to find room.
const evictScan = 8

// newCache returns a cache of at most size entries (the per-shard bound
// is rounded down, so the total never exceeds size).
func newCache(size int) *cache {
	n := 16
	if size < 256 {
		n = 1
	}
	c := &cache{shards: make([]shard, n), perShard: max(size/n, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[key]*verified)
	}
	return c
}

func (c *cache) shard(k *key) *shard { return &c.shards[int(k[0])%len(c.shards)] }

// get returns the verdict for k if it is still good at now (Unix
// nanoseconds): not expired and its key not dropped.
func (c *cache) get(k *key, now int64) *verified {
	s := c.shard(k)
	s.mu.RLock()
	v := s.m[*k]
	s.mu.RUnlock()
	if v == nil || now >= v.until || v.key.dropped.Load() {
		return nil
	}
	return v
}

// put stores v for k.
func (c *cache) put(k *key, v *verified, now int64) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		var victim key
		seen, freed := 0, false
		for ek, e := range s.m {
			if now >= e.until || e.key.dropped.Load() {
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
	s.m[*k] = v
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
