package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/expr"
	"github.com/gatehouse/gatehouse/internal/policy/limitkey"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Config is the rate_limit policy's settings.
//
//	rate_limit:
//	  key: client_id
//	  limits:
//	    - {rate: 10, per: 1s, burst: 20}
//	    - {rate: 1000, per: 1m}
//	  cost_expr: 'request.method == "GET" ? 1 : 5'
//	  on_store_error: local
//	  local_fraction: 0.34
//
// One limit may be written inline: `rate_limit: {rate: 20, per: 1s}`. See
// docs/policies/rate_limit.md.
type Config struct {
	// Key says whose limit a request counts against (see package
	// limitkey). Default consumer; requests without one count against
	// their client address.
	Key string `yaml:"key"`
	// Name tells two rate_limit policies on one route apart in the store.
	// Default: the key as written (hashed when long).
	Name string `yaml:"name"`
	// Limits all apply: a request passes only if every one allows it,
	// and then counts against every one. At most MaxLimits.
	Limits []LimitConfig `yaml:"limits"`
	// Rate, Per, Burst: one limit, instead of Limits.
	Rate  int             `yaml:"rate"`
	Per   config.Duration `yaml:"per"`
	Burst int             `yaml:"burst"`
	// Cost is what each request costs, in units of the rates. Default 1;
	// 0 makes the policy only report (headers), never refuse.
	Cost *int `yaml:"cost"`
	// CostExpr is a CEL expression of type int computing the cost per
	// request, instead of Cost. A negative result fails the request
	// closed.
	CostExpr string `yaml:"cost_expr"`
	// OnStoreError is what happens while the store (Redis) is
	// unreachable: closed (the default: 503), open (unlimited) or local
	// (an in-process limiter at LocalFraction of each limit).
	OnStoreError string `yaml:"on_store_error"`
	// LocalFraction scales each limit's rate and burst for the local
	// fallback; with N instances behind a balancer, 1/N keeps the total
	// near the limit. Default 1. Only with on_store_error: local.
	LocalFraction float64 `yaml:"local_fraction"`
	// Headers adds the RateLimit-Policy and RateLimit headers to
	// responses. Default true.
	Headers *bool `yaml:"headers"`
}

// LimitConfig is one limit: Rate requests (cost units) per Per, with
// bursts of up to Burst.
type LimitConfig struct {
	// Name is the limit's name in the RateLimit headers. Default
	// "<rate>-per-<per>", like "10-per-1s".
	Name string `yaml:"name"`
	// Rate is the number of units per Per. Required, at least 1.
	Rate int `yaml:"rate"`
	// Per is the period. Default 1s.
	Per config.Duration `yaml:"per"`
	// Burst is the most units that may pass at once. Default Rate.
	Burst int `yaml:"burst"`
}

// MaxLimits bounds the limits of one policy.
const MaxLimits = 8

// settings is a validated Config.
type settings struct {
	key      limitkey.Spec
	name     string
	limits   []store.Limit
	names    []string
	cost     int
	costExpr *expr.Value
	mode     string
	fraction float64
	headers  bool
}

func decode(cfg *config.Node, now func() time.Time) (*settings, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	s := &settings{cost: 1, mode: limitkey.FailClosed, fraction: 1, headers: true}
	var err error
	if s.key, err = limitkey.Parse(cfg, "key", c.Key, now); err != nil {
		return nil, err
	}
	s.name = c.Name
	if s.name == "" {
		s.name = c.Key
		if s.name == "" {
			s.name = "consumer"
		}
	}
	if len(s.name) > 64 || strings.ContainsAny(s.name, "{}: \t\r\n") {
		if c.Name != "" {
			return nil, cfg.Errorf("name", "ratelimit: name %q: at most 64 characters, no spaces, braces or colons", c.Name)
		}
		sum := sha256.Sum256([]byte(s.name))
		s.name = "k" + hex.EncodeToString(sum[:6])
	}

	limits := c.Limits
	at := func(i int) string { return config.Index("limits", i) + "." }
	switch {
	case len(limits) > 0 && (c.Rate != 0 || c.Per != 0 || c.Burst != 0):
		return nil, cfg.Errorf("rate", "ratelimit: give limits or rate/per/burst, not both")
	case len(limits) == 0 && c.Rate == 0:
		return nil, cfg.Errorf("", "ratelimit: needs limits (or rate)")
	case len(limits) == 0:
		limits = []LimitConfig{{Rate: c.Rate, Per: c.Per, Burst: c.Burst}}
		at = func(int) string { return "" }
	case len(limits) > MaxLimits:
		return nil, cfg.Errorf("limits", "ratelimit: at most %d limits, got %d", MaxLimits, len(limits))
	}
	seen := map[string]bool{}
	for i, lc := range limits {
		if lc.Rate < 1 {
			return nil, cfg.Errorf(at(i)+"rate", "ratelimit: rate must be at least 1")
		}
		per := lc.Per.Std()
		if per == 0 {
			per = time.Second
		}
		if per < time.Millisecond {
			return nil, cfg.Errorf(at(i)+"per", "ratelimit: per must be at least 1ms")
		}
		if per/time.Duration(lc.Rate) < time.Microsecond {
			return nil, cfg.Errorf(at(i)+"rate", "ratelimit: %d per %v is more than one per microsecond", lc.Rate, per)
		}
		if lc.Burst < 0 {
			return nil, cfg.Errorf(at(i)+"burst", "ratelimit: burst must not be negative")
		}
		name := lc.Name
		if name == "" {
			name = strconv.Itoa(lc.Rate) + "-per-" + shortDuration(per)
		} else if !validName(name) {
			return nil, cfg.Errorf(at(i)+"name", "ratelimit: name %q: use letters, digits, '-', '_' and '.'", name)
		}
		if seen[name] {
			return nil, cfg.Errorf(at(i)+"name", "ratelimit: two limits named %q", name)
		}
		seen[name] = true
		s.limits = append(s.limits, store.Limit{Rate: lc.Rate, Period: per, Burst: lc.Burst})
		s.names = append(s.names, name)
	}

	switch {
	case c.Cost != nil && c.CostExpr != "":
		return nil, cfg.Errorf("cost_expr", "ratelimit: give cost or cost_expr, not both")
	case c.Cost != nil:
		if *c.Cost < 0 {
			return nil, cfg.Errorf("cost", "ratelimit: cost must not be negative")
		}
		s.cost = *c.Cost
		for i, l := range s.limits {
			if s.cost > l.BurstOrRate() {
				return nil, cfg.Errorf("cost", "ratelimit: cost %d exceeds the burst %d of limit %s: no request could pass", s.cost, l.BurstOrRate(), s.names[i])
			}
		}
	case c.CostExpr != "":
		if s.costExpr, err = expr.CompileInt(cfg, "cost_expr", c.CostExpr, now); err != nil {
			return nil, err
		}
	}

	switch c.OnStoreError {
	case "", limitkey.FailClosed:
	case limitkey.FailOpen, limitkey.FailLocal:
		s.mode = c.OnStoreError
	default:
		return nil, cfg.Errorf("on_store_error", "ratelimit: unknown on_store_error %q (want closed, open or local)", c.OnStoreError)
	}
	if c.LocalFraction != 0 {
		if s.mode != limitkey.FailLocal {
			return nil, cfg.Errorf("local_fraction", "ratelimit: local_fraction is only for on_store_error: local")
		}
		if math.IsNaN(c.LocalFraction) || c.LocalFraction <= 0 || c.LocalFraction > 1 {
			return nil, cfg.Errorf("local_fraction", "ratelimit: local_fraction must be in (0, 1]")
		}
		s.fraction = c.LocalFraction
	}
	if c.Headers != nil {
		s.headers = *c.Headers
	}
	return s, nil
}

// scaled returns limits with rate and burst multiplied by f (at least 1).
func scaled(limits []store.Limit, f float64) []store.Limit {
	out := make([]store.Limit, len(limits))
	for i, l := range limits {
		out[i] = store.Limit{
			Rate:   max(1, int(math.Round(float64(l.Rate)*f))),
			Period: l.Period,
			Burst:  max(1, int(math.Round(float64(l.BurstOrRate())*f))),
		}
	}
	return out
}

// shortDuration formats d without zero parts: 1s, 1m, 1h, 1h30m, 250ms.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *settings) String() string { return fmt.Sprintf("%s %v", s.key, s.names) }
