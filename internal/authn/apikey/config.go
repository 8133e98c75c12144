package apikey

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the apikey authenticator's settings.
//
//	apikey:
//	  header: X-API-Key
//	  query: api_key
//	  strip: true
//	  keys:
//	    - consumer: reader-app
//	      hash: "sha256:…"
//	      scopes: [products:read]
//	      tier: gold
//	      metadata: {team: catalog}
//	  keys_file: consumers.yaml
type Config struct {
	// Header is the request header carrying the key. Default "X-API-Key".
	Header string `yaml:"header"`
	// Query, when set, also accepts the key in this URL query parameter.
	// Empty (the default): keys in the query are not looked at.
	Query string `yaml:"query"`
	// Strip removes the key (header and query parameter) from the request
	// before it is forwarded, so that it does not reach the upstream or its
	// logs. Default true.
	Strip bool `yaml:"strip"`
	// Keys are the consumers and the hashes of their keys.
	Keys []KeyConfig `yaml:"keys"`
	// KeysFile names a YAML file with more consumers, as a mapping with a
	// `keys` list of the same shape as Keys. A relative path is relative to
	// the config file's directory. It is read at every config load.
	KeysFile string `yaml:"keys_file"`
	// Store, when set, also looks keys up in the gateway's state store
	// (see StoreConfig), after those of Keys and KeysFile.
	Store *StoreConfig `yaml:"store"`
}

// KeyConfig is one consumer and its key.
type KeyConfig struct {
	// Consumer names the caller; it becomes the Principal's Subject,
	// ClientID and Consumer. Required, unique, at most 128 characters of
	// letters, digits and . _ - : @ (it ends up in headers and metric
	// labels).
	Consumer string `yaml:"consumer"`
	// Hash is "sha256:" and the unpadded base64url SHA-256 of the key, as
	// printed by `gatehouse apikey create`. Required, unique.
	Hash string `yaml:"hash"`
	// Scopes are the scopes the consumer is granted.
	Scopes []string `yaml:"scopes"`
	// Tier names the consumer's rate-limit tier; it is put into the
	// Principal's Claims as "tier". Empty: no tier claim.
	Tier string `yaml:"tier"`
	// Metadata are further attributes, put into the Principal's Claims.
	Metadata map[string]any `yaml:"metadata"`
}

// keysFile is the shape of a keys_file.
type keysFile struct {
	Keys []KeyConfig `yaml:"keys"`
}

// HashPrefix starts every key hash in the config.
const HashPrefix = "sha256:"

// maxConsumerLen bounds consumer names, which go into headers and labels.
const maxConsumerLen = 128

// parsed is a validated Config.
type parsed struct {
	header string // canonical
	query  string
	strip  bool
	keys   *keySet
	store  *storeSource // nil: no store lookups
}

// decode builds the authenticator's settings from cfg: the Config decoded
// strictly over its defaults, validated, provisioned.
func decode(cfg *config.Node, env *authn.Env) (*parsed, error) {
	c := Config{Header: "X-API-Key", Strip: true}
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg, env)
}

// validate checks the settings of c, reporting every independent problem
// at its place. The keys themselves are checked by provision, as it builds
// the key set: checking a million keys of a keys_file is reading it, and
// checking them apart from building the set would do the work twice.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Header == "" || !config.IsToken(c.Header) {
		p.Errorf(cfg, "header", "%q is not a valid header name", c.Header)
	} else if hc := http.CanonicalHeaderKey(c.Header); hc == "Authorization" || hc == "Cookie" || hc == "Proxy-Authorization" {
		p.Errorf(cfg, "header", "%s cannot carry API keys: it has its own syntax and other authenticators read it", hc)
	}
	if c.Query != "" && strings.ContainsAny(c.Query, "&=#;+% ") {
		p.Errorf(cfg, "query", "%q is not a plain query parameter name", c.Query)
	}
	if c.Store != nil {
		c.Store.validate(&p, cfg)
	}
	return p.Err()
}

// provision checks the keys of a validated c and builds the key set from
// them and the keys_file (relative to cfg's file), and the store lookups
// on the gateway's store. Every key problem is reported, up to maxErrors.
func (c *Config) provision(cfg *config.Node, env *authn.Env) (*parsed, error) {
	b := newKeySetBuilder()
	src := b.addSource(cfg.File(), joinField(cfg.Path(), "keys"))
	for i := range c.Keys {
		e, err := checkEntry(cfg, config.Index("keys", i), &c.Keys[i])
		if err != nil {
			b.fail(err)
			continue
		}
		b.add(src, i, &e)
	}
	if c.KeysFile != "" {
		if err := readKeysFile(b, cfg, c.KeysFile); err != nil {
			return nil, err
		}
	}
	ks, errs := b.build()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var kstore *storeSource
	if c.Store != nil {
		penv := env.Policy()
		// The gateway's store, not penv.StateStore(): a store of this
		// process alone would hold no key that anyone wrote.
		var err error
		if kstore, err = newStoreSource(cfg, c.Store, penv.Store, penv.Clock()); err != nil {
			return nil, err
		}
	}
	if ks.Len() == 0 && kstore == nil {
		return nil, cfg.Errorf("", "apikey needs at least one key in keys or keys_file, or a store")
	}
	return &parsed{
		header: http.CanonicalHeaderKey(c.Header),
		query:  c.Query,
		strip:  c.Strip,
		keys:   ks,
		store:  kstore,
	}, nil
}

func joinField(at, f string) string {
	if at == "" {
		return f
	}
	return at + "." + f
}

// checkEntry checks one key's config, at path at relative to n (n may be
// nil: the errors then have no place, and the caller parses again to
// place them).
func checkEntry(n *config.Node, at string, k *KeyConfig) (entry, error) {
	if k.Consumer == "" {
		return entry{}, n.Errorf(at, "consumer is required")
	}
	if !validConsumer(k.Consumer) {
		return entry{}, n.Errorf(joinField(at, "consumer"), "%q: a consumer is 1 to %d letters, digits and . _ - : @", k.Consumer, maxConsumerLen)
	}
	if k.Hash == "" {
		return entry{}, n.Errorf(at, "hash is required (create a key with `gatehouse apikey create --consumer %s`)", k.Consumer)
	}
	sum, err := ParseHash(k.Hash)
	if err != nil {
		return entry{}, n.Errorf(joinField(at, "hash"), "%v", err)
	}
	for j, s := range k.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\\x00") {
			return entry{}, n.Errorf(joinField(at, "scopes["+strconv.Itoa(j)+"]"), "%q is not a valid scope (RFC 6749 §3.3)", s)
		}
	}
	if k.Tier != "" {
		if _, clash := k.Metadata["tier"]; clash {
			return entry{}, n.Errorf(joinField(at, "metadata.tier"), "tier is set both here and as the consumer's tier")
		}
	}
	e := entry{consumer: k.Consumer, sum: sum, scopes: k.Scopes, tier: k.Tier, metadata: k.Metadata}
	if n != nil {
		e.consPos = posOf(n, joinField(at, "consumer"))
		e.hashPos = posOf(n, joinField(at, "hash"))
	}
	return e, nil
}

// posOf returns the place in the file of field, relative to n.
func posOf(n *config.Node, field string) pos {
	var ce *config.Error
	if errors.As(n.Errorf(field, ""), &ce) {
		return pos{uint32(ce.Line), uint32(ce.Column)}
	}
	return pos{}
}

// ParseHash parses a key hash as written in the config: "sha256:" and the
// unpadded base64url encoding of 32 bytes.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if strings.HasPrefix(s, KeyPrefix) {
		return sum, errors.New("apikey: this is a key, not a hash: store only the hash (" + HashPrefix + "…) that `gatehouse apikey create` prints, and rotate this key, it has been exposed")
	}
	b64, ok := strings.CutPrefix(s, HashPrefix)
	if !ok {
		return sum, fmt.Errorf("apikey: a hash is %q and the base64url SHA-256 of the key", HashPrefix)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != sha256.Size {
		return sum, fmt.Errorf("apikey: a hash is %q and 43 characters of unpadded base64url (a SHA-256)", HashPrefix)
	}
	copy(sum[:], raw)
	return sum, nil
}

func validConsumer(s string) bool {
	if len(s) == 0 || len(s) > maxConsumerLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == ':' || c == '@') {
			return false
		}
	}
	return true
}
