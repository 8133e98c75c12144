package apikey

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
)

// StoreConfig makes the authenticator also look keys up in the gateway's
// state store (Redis when several instances share one), for key sets that
// outgrow a file or change without a reload, as Kong and Tyk keep keys in
// their database:
//
//	apikey:
//	  store:
//	    prefix: "apikey:"
//	    cache_ttl: 30s
//	    negative_ttl: 5s
//	    cache_size: 100000
//	    timeout: 1s
//
// A key is written there by `gatehouse apikey create --store`, under prefix
// and the base64url SHA-256 of the key, as a JSON StoredKey. Keys in the
// config and keys_file are looked up first.
type StoreConfig struct {
	// Prefix starts the store key of every API key. Default "apikey:".
	Prefix string `yaml:"prefix"`
	// CacheTTL is how long a key found in the store is trusted without
	// asking again: a key deleted from the store keeps working this long
	// on each instance. Default 30s; at most 1h.
	CacheTTL config.Duration `yaml:"cache_ttl"`
	// NegativeTTL is how long a key not found is refused without asking
	// again: a key added to the store may be refused this long by an
	// instance that was just asked for it. Default 5s; at most 1h.
	NegativeTTL config.Duration `yaml:"negative_ttl"`
	// CacheSize bounds the cached answers (found and not found) per
	// authenticator. Default 100000.
	CacheSize int `yaml:"cache_size"`
	// Timeout bounds one store lookup. Default 1s.
	Timeout config.Duration `yaml:"timeout"`
}

// StoredKey is the value of a key in the store: the consumer, as in the
// config, without the hash (the store key holds it).
type StoredKey struct {
	Consumer string         `json:"consumer"`
	Scopes   []string       `json:"scopes,omitempty"`
	Tier     string         `json:"tier,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// DefaultStorePrefix is StoreConfig.Prefix's default.
const DefaultStorePrefix = "apikey:"

// checkPrefix refuses store key prefixes the store would misread.
func checkPrefix(p string) error {
	if p == "" || p[0] == '{' || len(p) > 64 || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%q: a prefix is 1 to 64 characters, without spaces or control characters, not starting with {", p)
	}
	return nil
}

// StoreKey returns the store key under which the key with hash (in the
// config's "sha256:…" form) is kept.
func StoreKey(prefix, hash string) (string, error) {
	if err := checkPrefix(prefix); err != nil {
		return "", fmt.Errorf("apikey: store prefix %w", err)
	}
	sum, err := ParseHash(hash)
	if err != nil {
		return "", err
	}
	return storeKey(prefix, &sum), nil
}

func storeKey(prefix string, sum *[sha256.Size]byte) string {
	return prefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// PutStoredKey checks a consumer and its key hash as the config would, and
// writes them to st under prefix (replacing an entry for the same hash).
func PutStoredKey(ctx context.Context, st store.Store, prefix string, k KeyConfig) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("apikey: store prefix %w", err)
	}
	e, err := checkEntry(nil, "", &k)
	if err != nil {
		return err
	}
	v, err := json.Marshal(StoredKey{Consumer: k.Consumer, Scopes: k.Scopes, Tier: k.Tier, Metadata: k.Metadata})
	if err != nil {
		return fmt.Errorf("apikey: %w", err)
	}
	return st.Set(ctx, storeKey(prefix, &e.sum), v, 0)
}

// DeleteStoredKey removes the key with hash from st. Instances that cached
// it keep accepting it for up to their cache_ttl.
func DeleteStoredKey(ctx context.Context, st store.Store, prefix, hash string) error {
	k, err := StoreKey(prefix, hash)
	if err != nil {
		return err
	}
	return st.Delete(ctx, k)
}

// storeSource looks keys up in the store, with a bounded cache of answers.
type storeSource struct {
	st          store.Store
	prefix      string
	ttl, negTTL time.Duration
	timeout     time.Duration
	now         func() time.Time

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]cached
	max   int
}

// cached is one answer: a principal template, or nil for "no such key".
type cached struct {
	p   *policy.Principal
	exp int64 // unix nanoseconds
}

// Defaults of StoreConfig.
const (
	defaultStoreCacheTTL    = 30 * time.Second
	defaultStoreNegativeTTL = 5 * time.Second
	defaultStoreTimeout     = time.Second
	defaultStoreCacheSize   = 100_000
	maxStoreCacheSize       = 10_000_000
)

// validate records the problems of c, the store block of n, in p. A zero
// duration or size is "the default", checked as such.
func (c *StoreConfig) validate(p *config.Problems, n *config.Node) {
	if c.Prefix != "" {
		if err := checkPrefix(c.Prefix); err != nil {
			p.Errorf(n, "store.prefix", "%v", err)
		}
	}
	for _, d := range []struct {
		field string
		v     config.Duration
	}{{"cache_ttl", c.CacheTTL}, {"negative_ttl", c.NegativeTTL}, {"timeout", c.Timeout}} {
		if d.v < 0 || d.v.Std() > time.Hour {
			p.Errorf(n, "store."+d.field, "must be between 0 and 1h")
		}
	}
	if c.CacheSize < 0 || c.CacheSize > maxStoreCacheSize {
		p.Errorf(n, "store.cache_size", "must be between 1 and %d", maxStoreCacheSize)
	}
}

// newStoreSource provisions the store lookups of a validated c on st, the
// gateway's state store: a process-local store would hold no key anyone
// wrote, so none configured is an error at n's store field.
func newStoreSource(n *config.Node, c *StoreConfig, st store.Store, now func() time.Time) (*storeSource, error) {
	if st == nil {
		return nil, n.Errorf("store", "no state store: the gateway has none configured")
	}
	return &storeSource{
		st:      st,
		prefix:  cmp.Or(c.Prefix, DefaultStorePrefix),
		ttl:     cmp.Or(c.CacheTTL.Std(), defaultStoreCacheTTL),
		negTTL:  cmp.Or(c.NegativeTTL.Std(), defaultStoreNegativeTTL),
		timeout: cmp.Or(c.Timeout.Std(), defaultStoreTimeout),
		now:     now,
		cache:   make(map[[sha256.Size]byte]cached),
		max:     cmp.Or(c.CacheSize, defaultStoreCacheSize),
	}, nil
}

// lookup returns the principal template of the key with hash sum, nil
// when the store has no such key, or an error when the store cannot say.
func (s *storeSource) lookup(ctx context.Context, sum *[sha256.Size]byte) (*policy.Principal, error) {
	now := s.now().UnixNano()
	s.mu.RLock()
	c, ok := s.cache[*sum]
	s.mu.RUnlock()
	if ok && now < c.exp {
		return c.p, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	v, err := s.st.Get(ctx, storeKey(s.prefix, sum))
	var p *policy.Principal
	ttl := s.negTTL
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		// A record that does not read as a valid consumer authenticates
		// no one; it is cached as absent.
		if p = parseStored(v); p != nil {
			ttl = s.ttl
		}
	}
	s.put(*sum, cached{p: p, exp: now + int64(ttl)})
	return p, nil
}

// put caches an answer, making room first when the cache is full: expired
// answers go, then, if that was not enough, an arbitrary eighth of the
// rest (map order), so that a flood of unknown keys costs store lookups,
// never unbounded memory.
func (s *storeSource) put(k [sha256.Size]byte, c cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.max {
		now := s.now().UnixNano()
		for key, e := range s.cache {
			if now >= e.exp {
				delete(s.cache, key)
			}
		}
		drop := len(s.cache) - s.max + max(s.max/8, 1)
		for key := range s.cache {
			if drop <= 0 {
				break
			}
			delete(s.cache, key)
			drop--
		}
	}
	s.cache[k] = c
}

// parseStored reads a StoredKey and checks it as the config would.
func parseStored(v []byte) *policy.Principal {
	var sk StoredKey
	if err := json.Unmarshal(v, &sk); err != nil {
		return nil
	}
	// The hash is the store key's; checkEntry wants one to check.
	k := KeyConfig{Consumer: sk.Consumer, Hash: placeholderHash, Scopes: sk.Scopes, Tier: sk.Tier, Metadata: sk.Metadata}
	e, err := checkEntry(nil, "", &k)
	if err != nil {
		return nil
	}
	claims := make(map[string]any, len(e.metadata)+1)
	for name, v := range e.metadata {
		claims[name] = v
	}
	if e.tier != "" {
		claims["tier"] = e.tier
	}
	return &policy.Principal{Subject: e.consumer, ClientID: e.consumer, Consumer: e.consumer,
		Scopes: e.scopes, Claims: claims, Method: "apikey"}
}

// placeholderHash is a well-formed hash, for checking stored records.
var placeholderHash = HashPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, sha256.Size))

func storeUnavailable(err error) *policy.Denial {
	return &policy.Denial{
		Status: http.StatusServiceUnavailable,
		Code:   "apikey_store_unavailable",
		Detail: "the API key cannot be checked at the moment; try again later",
		Header: http.Header{"Retry-After": {"1"}},
		Err:    err,
	}
}
