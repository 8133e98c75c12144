package ratelimit

import (
	"cmp"
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

// decode builds the settings of cfg: strict decoding, validate,
// provision.
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

// limitList returns the limits c gives, the shorthand rate/per/burst as
// one, and the path prefix of limit i's fields.
func (c *Config) limitList() ([]LimitConfig, func(i int) string) {
	if len(c.Limits) == 0 && c.Rate != 0 {
		return []LimitConfig{{Rate: c.Rate, Per: c.Per, Burst: c.Burst}}, func(int) string { return "" }
	}
	return c.Limits, func(i int) string { return config.Index("limits", i) + "." }
}

// limitName returns the name of limit lc with period per: its own, or
// one made of its rate and period.
func limitName(lc LimitConfig, per time.Duration) string {
	return cmp.Or(lc.Name, strconv.Itoa(lc.Rate)+"-per-"+shortDuration(per))
}

// validate checks c, reporting every independent problem at its place.
// The key and cost_expr are checked by provision, which compiles them.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Name != "" && (len(c.Name) > 64 || strings.ContainsAny(c.Name, "{}: \t\r\n")) {
		p.Errorf(cfg, "name", "ratelimit: name %q: at most 64 characters, no spaces, braces or colons", c.Name)
	}
	switch {
	case len(c.Limits) > 0 && (c.Rate != 0 || c.Per != 0 || c.Burst != 0):
		p.Errorf(cfg, "rate", "ratelimit: give limits or rate/per/burst, not both")
	case len(c.Limits) == 0 && c.Rate == 0:
		p.Errorf(cfg, "", "ratelimit: needs limits (or rate)")
	case len(c.Limits) > MaxLimits:
		p.Errorf(cfg, "limits", "ratelimit: at most %d limits, got %d", MaxLimits, len(c.Limits))
	}
	limits, at := c.limitList()
	seen := map[string]bool{}
	for i, lc := range limits {
		per := cmp.Or(lc.Per.Std(), time.Second)
		switch {
		case lc.Rate < 1:
			p.Errorf(cfg, at(i)+"rate", "ratelimit: rate must be at least 1")
		case per < time.Millisecond:
			p.Errorf(cfg, at(i)+"per", "ratelimit: per must be at least 1ms")
		case per/time.Duration(lc.Rate) < time.Microsecond:
			p.Errorf(cfg, at(i)+"rate", "ratelimit: %d per %v is more than one per microsecond", lc.Rate, per)
		}
		if lc.Burst < 0 {
			p.Errorf(cfg, at(i)+"burst", "ratelimit: burst must not be negative")
		}
		name := limitName(lc, per)
		if lc.Name != "" && !validName(lc.Name) {
			p.Errorf(cfg, at(i)+"name", "ratelimit: name %q: use letters, digits, '-', '_' and '.'", lc.Name)
		} else if seen[name] {
			p.Errorf(cfg, at(i)+"name", "ratelimit: two limits named %q", name)
		}
		seen[name] = true
	}
	switch {
	case c.Cost != nil && c.CostExpr != "":
		p.Errorf(cfg, "cost_expr", "ratelimit: give cost or cost_expr, not both")
	case c.Cost != nil && *c.Cost < 0:
		p.Errorf(cfg, "cost", "ratelimit: cost must not be negative")
	case c.Cost != nil:
		for _, lc := range limits {
			l := store.Limit{Rate: lc.Rate, Burst: lc.Burst}
			if lc.Rate >= 1 && lc.Burst >= 0 && *c.Cost > l.BurstOrRate() {
				p.Errorf(cfg, "cost", "ratelimit: cost %d exceeds the burst %d of limit %s: no request could pass", *c.Cost, l.BurstOrRate(), limitName(lc, cmp.Or(lc.Per.Std(), time.Second)))
				break
			}
		}
	}
	switch c.OnStoreError {
	case "", limitkey.FailClosed, limitkey.FailOpen, limitkey.FailLocal:
	default:
		p.Errorf(cfg, "on_store_error", "ratelimit: unknown on_store_error %q (want closed, open or local)", c.OnStoreError)
	}
	if c.LocalFraction != 0 {
		if c.OnStoreError != limitkey.FailLocal {
			p.Errorf(cfg, "local_fraction", "ratelimit: local_fraction is only for on_store_error: local")
		} else if math.IsNaN(c.LocalFraction) || c.LocalFraction <= 0 || c.LocalFraction > 1 {
			p.Errorf(cfg, "local_fraction", "ratelimit: local_fraction must be in (0, 1]")
		}
	}
	return p.Err()
}

// provision compiles the key and cost_expr of a validated c and builds
// its settings.
func (c *Config) provision(cfg *config.Node, now func() time.Time) (*settings, error) {
	s := &settings{
		cost:     1,
		mode:     cmp.Or(c.OnStoreError, limitkey.FailClosed),
		fraction: cmp.Or(c.LocalFraction, 1),
		headers:  c.Headers == nil || *c.Headers,
		name:     cmp.Or(c.Name, c.Key, "consumer"),
	}
	if len(s.name) > 64 || strings.ContainsAny(s.name, "{}: \t\r\n") {
		// A key (header:NAME, expr:CEL) that cannot be part of a store
		// key: named by its hash instead.
		sum := sha256.Sum256([]byte(s.name))
		s.name = "k" + hex.EncodeToString(sum[:6])
	}
	limits, _ := c.limitList()
	for _, lc := range limits {
		per := cmp.Or(lc.Per.Std(), time.Second)
		s.limits = append(s.limits, store.Limit{Rate: lc.Rate, Period: per, Burst: lc.Burst})
		s.names = append(s.names, limitName(lc, per))
	}
	if c.Cost != nil {
		s.cost = *c.Cost
	}
	var p config.Problems
	var err error
	if s.key, err = limitkey.Parse(cfg, "key", c.Key, now); err != nil {
		p.Add(err)
	}
	if c.CostExpr != "" {
		if s.costExpr, err = expr.CompileInt(cfg, "cost_expr", c.CostExpr, now); err != nil {
			p.Add(err)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
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
