package session

import (
	"context"
	"sync"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// channelEnded carries the hash of each session that ended (logout, a
// refused refresh), so that every instance drops it from its cache.
const channelEnded = "session:ended"

// cache keeps the principals of recently used sessions by the exact
// cookie value that was verified, so that a request with a session costs
// a map lookup, as one with a cached JWT does. An entry lives at most the
// cache TTL and never into its access token's refresh window; a session
// that ends is dropped on every instance by a message on channelEnded
// (and the whole cache on a resync signal, when messages may be lost).
type cache struct {
	mu   sync.Mutex
	size int
	// gen counts drops and clears: an entry read from the store before a
	// drop must not be put after it (put takes the gen seen before).
	gen uint64
	// dead: the subscription ended; nothing is cached any more.
	dead   bool
	byKey  map[string]*entry
	byHash map[string]string // session hash -> cookie value
}

type entry struct {
	pr    *policy.Principal // shared by the requests of the session: read-only
	token string            // the access token
	hash  string
	until int64 // Unix ns
}

func newCache(size int) *cache {
	return &cache{size: size, byKey: make(map[string]*entry), byHash: make(map[string]string)}
}

func (c *cache) get(key string, now int64) *entry {
	c.mu.Lock()
	e := c.byKey[key]
	if c.dead {
		e = nil
	}
	c.mu.Unlock()
	if e == nil || now >= e.until {
		return nil
	}
	return e
}

// generation returns the current gen, to pass to put.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *cache) put(key string, e *entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || gen != c.gen {
		return
	}
	if old, ok := c.byHash[e.hash]; ok && old != key {
		delete(c.byKey, old)
	}
	if len(c.byKey) >= c.size {
		// Full: drop some entry (map order is random enough; every entry
		// is short-lived anyway).
		for k, v := range c.byKey {
			delete(c.byKey, k)
			delete(c.byHash, v.hash)
			break
		}
	}
	c.byKey[key] = e
	c.byHash[e.hash] = key
}

func (c *cache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if k, ok := c.byHash[hash]; ok {
		delete(c.byKey, k)
		delete(c.byHash, hash)
	}
}

func (c *cache) clear(dead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.dead = c.dead || dead
	clear(c.byKey)
	clear(c.byHash)
}

// listen drops the sessions announced on channelEnded until ctx ends.
func (c *cache) listen(ctx context.Context, msgs <-chan []byte) {
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				// The subscription ended (store closed): nothing tells us
				// of ended sessions any more.
				c.clear(true)
				return
			}
			if m == nil {
				c.clear(false)
				continue
			}
			c.drop(string(m))
		}
	}
}
