package jsonlimits

import (
	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the json_limits policy's settings. Every limit has a default;
// 0 is not "no limit" but refused, so that a limit cannot be lifted by
// accident.
//
//	json_limits:
//	  max_bytes: 1MiB
//	  max_depth: 32
//	  max_keys: 1000
//	  max_array: 10000
//	  max_string: 64KiB
//	  max_number: 64
//	  max_tokens: 100000
type Config struct {
	// MaxBytes caps the body (413 beyond it). Default 1MiB, at most 64MiB:
	// the body is buffered, so this is also the memory one request may
	// take.
	MaxBytes config.ByteSize `yaml:"max_bytes"`
	// MaxDepth caps nesting of objects and arrays; a top-level object is
	// depth 1. Default 32.
	MaxDepth int `yaml:"max_depth"`
	// MaxKeys caps the members of one object. Default 1000.
	MaxKeys int `yaml:"max_keys"`
	// MaxArray caps the elements of one array. Default 10000.
	MaxArray int `yaml:"max_array"`
	// MaxString caps one string or key, in bytes as written between its
	// quotes (escapes count as written). Default 64KiB.
	MaxString config.ByteSize `yaml:"max_string"`
	// MaxNumber caps one number literal, in characters ("-1.5e10" is 7).
	// Default 64.
	MaxNumber int `yaml:"max_number"`
	// MaxTokens caps keys plus values in the document. Default 100000.
	MaxTokens int `yaml:"max_tokens"`
}

const maxMaxBytes = 64 << 20

// decode builds the limits of cfg: defaults, strict decoding over them,
// validate, provision.
func decode(cfg *config.Node) (Limits, int64, error) {
	c := Config{
		MaxBytes: 1 << 20, MaxDepth: 32, MaxKeys: 1000, MaxArray: 10000,
		MaxString: 64 << 10, MaxNumber: 64, MaxTokens: 100000,
	}
	if err := cfg.Decode(&c); err != nil {
		return Limits{}, 0, err
	}
	if err := c.validate(cfg); err != nil {
		return Limits{}, 0, err
	}
	l, maxBytes := c.provision()
	return l, maxBytes, nil
}

// validate checks a defaulted c, reporting every independent problem at
// its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.MaxBytes <= 0 || c.MaxBytes > maxMaxBytes {
		p.Errorf(cfg, "max_bytes", "json_limits: max_bytes must be between 1B and 64MiB")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_depth", int64(c.MaxDepth)}, {"max_keys", int64(c.MaxKeys)}, {"max_array", int64(c.MaxArray)},
		{"max_string", int64(c.MaxString)}, {"max_number", int64(c.MaxNumber)}, {"max_tokens", int64(c.MaxTokens)},
	} {
		if f.v <= 0 {
			p.Errorf(cfg, f.name, "json_limits: %s must be at least 1", f.name)
		}
	}
	if c.MaxDepth > 10000 {
		p.Errorf(cfg, "max_depth", "json_limits: max_depth must be at most 10000")
	}
	return p.Err()
}

// provision returns the limits and the body cap of a validated c.
func (c *Config) provision() (Limits, int64) {
	return Limits{
		Depth: c.MaxDepth, Keys: c.MaxKeys, Array: c.MaxArray, String: int(c.MaxString),
		Number: c.MaxNumber, Tokens: c.MaxTokens,
	}, int64(c.MaxBytes)
}
