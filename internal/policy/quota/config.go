package quota

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy/limitkey"
)

// Config is the quota policy's settings.
//
//	quota:
//	  key: consumer
//	  period: day
//	  time_zone: Europe/Berlin
//	  requests: 10000
//	  bytes: 1GiB
//	  tiers:
//	    gold: {requests: 1000000, bytes: 100GiB}
//
// See docs/policies/quota.md.
type Config struct {
	// Key says whose quota a request counts against (package limitkey).
	// Default consumer.
	Key string `yaml:"key"`
	// Name tells two quota policies on one route apart in the store.
	// Default "quota".
	Name string `yaml:"name"`
	// Period is the calendar period the counters cover: minute, hour,
	// day, week (from Monday) or month. Required.
	Period string `yaml:"period"`
	// TimeZone is the IANA zone the period boundaries are in. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// Requests is the number of requests per period. 0: not limited.
	Requests int64 `yaml:"requests"`
	// Bytes is the number of request plus response body bytes per
	// period. 0: not limited.
	Bytes config.ByteSize `yaml:"bytes"`
	// Tiers override Requests and Bytes for consumers whose principal
	// carries the tier (TierClaim) of that name.
	Tiers map[string]Tier `yaml:"tiers"`
	// TierClaim is the principal claim naming the tier. Default "tier"
	// (what the apikey authenticator sets from a consumer's tier).
	TierClaim string `yaml:"tier_claim"`
	// OnStoreError: closed (the default: 503) or open (admit, uncounted)
	// while the store is unreachable.
	OnStoreError string `yaml:"on_store_error"`
	// Headers adds the X-Quota-* headers to responses. Default true.
	Headers *bool `yaml:"headers"`
}

// Tier is a named set of quotas.
type Tier struct {
	Requests int64           `yaml:"requests"`
	Bytes    config.ByteSize `yaml:"bytes"`
}

// limits are one tier's quotas; 0 means not limited.
type limits struct {
	requests, bytes int64
}

type settings struct {
	key       limitkey.Spec
	name      string
	period    string
	loc       *time.Location
	def       limits
	tiers     map[string]limits
	tierClaim string
	mode      string
	headers   bool
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

// validate checks c, reporting every independent problem at its place.
// The key and the time zone are checked by provision, which compiles the
// one and loads the other.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Name != "" && (len(c.Name) > 64 || strings.ContainsAny(c.Name, "{}: \t\r\n")) {
		p.Errorf(cfg, "name", "quota: name %q: at most 64 characters, no spaces, braces or colons", c.Name)
	}
	switch c.Period {
	case "minute", "hour", "day", "week", "month":
	case "":
		p.Errorf(cfg, "", "quota: needs period (minute, hour, day, week or month)")
	default:
		p.Errorf(cfg, "period", "quota: unknown period %q (want minute, hour, day, week or month)", c.Period)
	}
	if c.Requests < 0 {
		p.Errorf(cfg, "requests", "quota: requests must not be negative")
	}
	if c.Requests == 0 && c.Bytes == 0 && len(c.Tiers) == 0 {
		p.Errorf(cfg, "", "quota: needs requests, bytes or tiers")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tiers)) {
		t, at := c.Tiers[name], "tiers"+config.KeySeg(name)
		if t.Requests < 0 {
			p.Errorf(cfg, at+".requests", "quota: requests must not be negative")
		} else if t.Requests == 0 && t.Bytes == 0 {
			p.Errorf(cfg, at, "quota: tier %q needs requests or bytes", name)
		}
	}
	switch c.OnStoreError {
	case "", limitkey.FailClosed, limitkey.FailOpen:
	default:
		p.Errorf(cfg, "on_store_error", "quota: unknown on_store_error %q (want closed or open)", c.OnStoreError)
	}
	return p.Err()
}

// provision compiles the key, loads the time zone and applies the
// defaults of a validated c.
func (c *Config) provision(cfg *config.Node, now func() time.Time) (*settings, error) {
	s := &settings{
		name:      cmp.Or(c.Name, "quota"),
		period:    c.Period,
		loc:       time.UTC,
		def:       limits{requests: c.Requests, bytes: c.Bytes.Bytes()},
		tiers:     make(map[string]limits, len(c.Tiers)),
		tierClaim: cmp.Or(c.TierClaim, "tier"),
		mode:      cmp.Or(c.OnStoreError, limitkey.FailClosed),
		headers:   c.Headers == nil || *c.Headers,
	}
	for name, t := range c.Tiers {
		s.tiers[name] = limits{requests: t.Requests, bytes: t.Bytes.Bytes()}
	}
	var p config.Problems
	var err error
	if s.key, err = limitkey.Parse(cfg, "key", c.Key, now); err != nil {
		p.Add(err)
	}
	if c.TimeZone != "" {
		if s.loc, err = time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "Local" {
			p.Errorf(cfg, "time_zone", "quota: unknown time zone %q (want an IANA name like Europe/Berlin)", c.TimeZone)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// bounds returns the start and end of the period holding t.
func bounds(period string, loc *time.Location, t time.Time) (start, end time.Time) {
	t = t.In(loc)
	y, mo, d := t.Date()
	switch period {
	case "minute":
		start = t.Truncate(time.Minute) // minutes are whole in every zone in use
		return start, start.Add(time.Minute)
	case "hour":
		start = time.Date(y, mo, d, t.Hour(), 0, 0, 0, loc)
		return start, start.Add(time.Hour)
	case "day":
		start = time.Date(y, mo, d, 0, 0, 0, 0, loc)
		return start, time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
	case "week":
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, mo, d-back, 0, 0, 0, 0, loc)
		return start, time.Date(y, mo, d-back+7, 0, 0, 0, 0, loc)
	}
	start = time.Date(y, mo, 1, 0, 0, 0, 0, loc)
	return start, time.Date(y, mo+1, 1, 0, 0, 0, 0, loc)
}
