package identity

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCache keeps minted tokens by principal hash, bounded in size. Two
// requests of one principal missing at once both mint; the second token
// replaces the first, and both are valid.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]cachedToken
	max int
}

type cachedToken struct {
	value string    // the header value
	renew time.Time // reuse strictly before this: iat + ttl/2
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[sha256.Size]byte]cachedToken, min(max, 1024)), max: max}
}

// get returns the cached value for key while now is before its renewal
// time.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (string, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.renew) {
		return "", false
	}
	return e.value, true
}

// put stores value for key, making room when the cache is full.
func (c *tokenCache) put(key [sha256.Size]byte, value string, renew, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[key] = cachedToken{value: value, renew: renew}
}

// evict drops the entries due for renewal, then arbitrary ones (map order
// is random) until an eighth of the room is free, so that a full cache of
// live tokens is swept once per max/8 insertions rather than on each.
func (c *tokenCache) evict(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.renew) {
			delete(c.m, k)
		}
	}
	target := c.max - c.max/8 - 1
	for k := range c.m {
		if len(c.m) <= target {
			break
		}
		delete(c.m, k)
	}
}

// len returns the number of entries, for tests.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
