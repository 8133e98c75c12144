package quota

import (
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

func decode(cfg *config.Node, now func() time.Time) (*settings, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	s := &settings{name: "quota", tierClaim: "tier", mode: limitkey.FailClosed, headers: true, loc: time.UTC}
	var err error
	if s.key, err = limitkey.Parse(cfg, "key", c.Key, now); err != nil {
		return nil, err
	}
	if c.Name != "" {
		if len(c.Name) > 64 || strings.ContainsAny(c.Name, "{}: \t\r\n") {
			return nil, cfg.Errorf("name", "quota: name %q: at most 64 characters, no spaces, braces or colons", c.Name)
		}
		s.name = c.Name
	}
	switch c.Period {
	case "minute", "hour", "day", "week", "month":
		s.period = c.Period
	case "":
		return nil, cfg.Errorf("", "quota: needs period (minute, hour, day, week or month)")
	default:
		return nil, cfg.Errorf("period", "quota: unknown period %q (want minute, hour, day, week or month)", c.Period)
	}
	if c.TimeZone != "" {
		if s.loc, err = time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "Local" {
			return nil, cfg.Errorf("time_zone", "quota: unknown time zone %q (want an IANA name like Europe/Berlin)", c.TimeZone)
		}
	}
	if c.Requests < 0 {
		return nil, cfg.Errorf("requests", "quota: requests must not be negative")
	}
	s.def = limits{requests: c.Requests, bytes: c.Bytes.Bytes()}
	if s.def == (limits{}) && len(c.Tiers) == 0 {
		return nil, cfg.Errorf("", "quota: needs requests, bytes or tiers")
	}
	s.tiers = make(map[string]limits, len(c.Tiers))
	for name, t := range c.Tiers {
		if t.Requests < 0 {
			return nil, cfg.Errorf("tiers."+name+".requests", "quota: requests must not be negative")
		}
		if t.Requests == 0 && t.Bytes == 0 {
			return nil, cfg.Errorf("tiers."+name, "quota: tier %q needs requests or bytes", name)
		}
		s.tiers[name] = limits{requests: t.Requests, bytes: t.Bytes.Bytes()}
	}
	if c.TierClaim != "" {
		s.tierClaim = c.TierClaim
	}
	switch c.OnStoreError {
	case "", limitkey.FailClosed:
	case limitkey.FailOpen:
		s.mode = limitkey.FailOpen
	default:
		return nil, cfg.Errorf("on_store_error", "quota: unknown on_store_error %q (want closed or open)", c.OnStoreError)
	}
	if c.Headers != nil {
		s.headers = *c.Headers
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
