package throttle

import (
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

func decode(cfg *config.Node, now func() time.Time) (*settings, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	s := &settings{request: true, response: true}
	var err error
	if s.key, err = limitkey.Parse(cfg, "key", c.Key, now); err != nil {
		return nil, err
	}
	if c.Bandwidth == 0 && c.Concurrency == 0 && c.UpstreamConcurrency == 0 {
		return nil, cfg.Errorf("", "throttle: needs bandwidth, concurrency or upstream_concurrency")
	}
	if c.Bandwidth > 1<<40 {
		return nil, cfg.Errorf("bandwidth", "throttle: bandwidth above 1TiB per second")
	}
	s.rate = int(c.Bandwidth)
	if c.Bandwidth == 0 && (c.Burst != 0 || c.Direction != "") {
		field := "burst"
		if c.Burst == 0 {
			field = "direction"
		}
		return nil, cfg.Errorf(field, "throttle: %s needs bandwidth", field)
	}
	s.burst = int(c.Burst)
	if s.burst == 0 {
		s.burst = min(defaultBurst, s.rate)
	}
	if s.burst > s.rate && s.rate > 0 {
		return nil, cfg.Errorf("burst", "throttle: burst %v is more than a second of bandwidth (%v)", c.Burst, c.Bandwidth)
	}
	switch c.Direction {
	case "", "both":
	case "request":
		s.response = false
	case "response":
		s.request = false
	default:
		return nil, cfg.Errorf("direction", "throttle: unknown direction %q (want both, request or response)", c.Direction)
	}
	if c.Concurrency < 0 {
		return nil, cfg.Errorf("concurrency", "throttle: must not be negative")
	}
	if c.UpstreamConcurrency < 0 {
		return nil, cfg.Errorf("upstream_concurrency", "throttle: must not be negative")
	}
	s.concurrency, s.upstream = c.Concurrency, c.UpstreamConcurrency
	return s, nil
}
