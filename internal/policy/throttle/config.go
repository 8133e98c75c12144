package throttle

import (
	"cmp"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/limitkey"
)

// Config is the throttle policy's settings.
//
//	throttle:
//	  key: consumer
//	  bandwidth: 1MiB      # per second, each direction
//	  burst: 64KiB
//	  concurrency: 10      # requests in flight per consumer
//	  upstream_concurrency: 200
//
// See docs/policies/throttle.md.
type Config struct {
	// Key says whose bandwidth and concurrency a request shares
	// (package limitkey). Default consumer.
	Key string `yaml:"key"`
	// Bandwidth is bytes per second for request bodies, and as much again
	// for response bodies, shared by all of a key's concurrent requests.
	// 0: not shaped.
	Bandwidth config.ByteSize `yaml:"bandwidth"`
	// Burst is how many bytes may pass at once after an idle spell.
	// Default 64KiB, or Bandwidth if smaller; at most Bandwidth.
	Burst config.ByteSize `yaml:"burst"`
	// Direction is which bodies are shaped: both (default), request or
	// response.
	Direction string `yaml:"direction"`
	// Concurrency is the most requests of one key in flight at once on
	// this instance. 0: not limited.
	Concurrency int `yaml:"concurrency"`
	// UpstreamConcurrency is the most requests of the route in flight to
	// its upstream at once on this instance. 0: not limited.
	UpstreamConcurrency int `yaml:"upstream_concurrency"`
}

const defaultBurst = 64 << 10

type settings struct {
	key                   limitkey.Spec
	rate, burst           int
	request, response     bool
	concurrency, upstream int
}

// decode builds the policy's settings from cfg: strict decoding,
// validate, provision.
func decode(cfg *config.Node, now func() time.Time) (*settings, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg, now)
}

// validate checks c, reporting every independent problem at its place in
// cfg. The key is checked by provision, which compiles it.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Bandwidth == 0 && c.Concurrency == 0 && c.UpstreamConcurrency == 0 {
		p.Errorf(cfg, "", "throttle: needs bandwidth, concurrency or upstream_concurrency")
	}
	if c.Bandwidth > 1<<40 {
		p.Errorf(cfg, "bandwidth", "throttle: bandwidth above 1TiB per second")
	}
	if c.Bandwidth == 0 {
		if c.Burst != 0 {
			p.Errorf(cfg, "burst", "throttle: burst needs bandwidth")
		}
		if c.Direction != "" {
			p.Errorf(cfg, "direction", "throttle: direction needs bandwidth")
		}
	}
	if c.Bandwidth > 0 && c.Burst > c.Bandwidth {
		p.Errorf(cfg, "burst", "throttle: burst %v is more than a second of bandwidth (%v)", c.Burst, c.Bandwidth)
	}
	switch c.Direction {
	case "", "both", "request", "response":
	default:
		p.Errorf(cfg, "direction", "throttle: unknown direction %q (want both, request or response)", c.Direction)
	}
	if c.Concurrency < 0 {
		p.Errorf(cfg, "concurrency", "throttle: must not be negative")
	}
	if c.UpstreamConcurrency < 0 {
		p.Errorf(cfg, "upstream_concurrency", "throttle: must not be negative")
	}
	return p.Err()
}

// provision compiles the key and applies the defaults of a validated c.
func (c *Config) provision(cfg *config.Node, now func() time.Time) (*settings, error) {
	key, err := limitkey.Parse(cfg, "key", c.Key, now)
	if err != nil {
		return nil, err
	}
	rate := int(c.Bandwidth)
	return &settings{
		key:         key,
		rate:        rate,
		burst:       cmp.Or(int(c.Burst), min(defaultBurst, rate)),
		request:     c.Direction != "response",
		response:    c.Direction != "request",
		concurrency: c.Concurrency,
		upstream:    c.UpstreamConcurrency,
	}, nil
}
