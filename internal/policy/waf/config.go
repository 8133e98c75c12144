package waf

import (
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Modes of the waf policy.
const (
	// ModeBlock refuses requests whose anomaly score reaches the
	// threshold.
	ModeBlock = "block"
	// ModeDetect only logs and counts what would have been refused.
	ModeDetect = "detect"
)

// Config is the waf policy's settings.
//
//	waf:
//	  paranoia_level: 1            # 1..4
//	  anomaly_threshold:
//	    inbound: 5                 # 1..10000; CRS default 5 (one critical match)
//	  mode: block                  # block | detect
//	  exclude:
//	    ids: [942100]
//	    tags: [attack-protocol]
//	  platform: [unix, windows, nodejs]   # or [all]; adds php, java
//	  inspect:
//	    query: true
//	    headers: true
//	    cookies: true
//	    body: true
//	    body_limit: 128KiB
//	    max_args: 200
//	  directives:
//	    - SecRule REQUEST_HEADERS:User-Agent "@pm sqlmap nikto" "id:10001,phase:1,deny,status:403,log"
type Config struct {
	// ParanoiaLevel is the CRS blocking paranoia level, 1 to 4. Default 1.
	ParanoiaLevel int `yaml:"paranoia_level"`
	// AnomalyThreshold holds the CRS anomaly score thresholds.
	AnomalyThreshold Thresholds `yaml:"anomaly_threshold"`
	// Mode is "block" (default) or "detect".
	Mode string `yaml:"mode"`
	// Exclude removes CRS rules.
	Exclude Exclude `yaml:"exclude"`
	// Platform lists the platforms the upstream runs on, keeping their
	// rules; "all" keeps every rule. Default DefaultPlatforms.
	Platform []string `yaml:"platform"`
	// Inspect says which parts of the request are inspected.
	Inspect Inspect `yaml:"inspect"`
	// AllowedMethods are the methods CRS rule 911100 lets through.
	// Default GET HEAD POST PUT PATCH DELETE OPTIONS.
	AllowedMethods []string `yaml:"allowed_methods"`
	// Directives are extra SecLang lines, loaded after the CRS.
	Directives []string `yaml:"directives"`
}

// Thresholds are anomaly score thresholds.
type Thresholds struct {
	// Inbound is the request score at which a request is refused.
	Inbound int `yaml:"inbound"`
}

// Exclude lists CRS rules to remove.
type Exclude struct {
	IDs  []int    `yaml:"ids"`
	Tags []string `yaml:"tags"`
}

// Inspect says what is fed to the rules.
type Inspect struct {
	Query   bool `yaml:"query"`
	Headers bool `yaml:"headers"`
	Cookies bool `yaml:"cookies"`
	// Body inspects JSON, XML (SOAP included), urlencoded and multipart
	// bodies; other content types are not read.
	Body bool `yaml:"body"`
	// BodyLimit is the largest body read; a larger one is refused with
	// 413 body_too_large. Default 128KiB, at most 16MiB.
	BodyLimit config.ByteSize `yaml:"body_limit"`
	// MaxArgs caps the arguments (query, form and JSON fields) inspected;
	// a request with more is refused (CRS rule 920380 at the default
	// paranoia level counts them too). Default 200, at most 10000.
	MaxArgs int `yaml:"max_args"`
}

// settings is a validated Config.
type settings struct {
	paranoia    int
	inbound     int
	mode        string
	excludeIDs  []int
	excludeTags []string
	platforms   []string // sorted; "all" alone for all
	inspect     inspect
	directives  []string
	methods     []string
}

type inspect struct {
	query, headers, cookies, body bool
	bodyLimit                     int64
	maxArgs                       int
}

func (s *settings) hasPlatform(p string) bool {
	return slices.Contains(s.platforms, "all") || slices.Contains(s.platforms, p)
}

const maxBodyLimit = 16 << 20

// decode builds the settings of cfg: defaults, strict decoding over
// them, validate, provision. The engine is compiled by New.
func decode(cfg *config.Node) (*settings, error) {
	c := Config{
		ParanoiaLevel:    1,
		AnomalyThreshold: Thresholds{Inbound: 5},
		Mode:             ModeBlock,
		AllowedMethods:   []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
		Inspect: Inspect{Query: true, Headers: true, Cookies: true, Body: true,
			BodyLimit: 128 << 10, MaxArgs: 200},
	}
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(), nil
}

// validate checks a defaulted c, reporting every independent problem at
// its place in cfg. SecLang directives are only checked for what would
// escape one entry; the engine parses them in New.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.ParanoiaLevel < 1 || c.ParanoiaLevel > 4 {
		p.Errorf(cfg, "paranoia_level", "waf: paranoia_level must be 1 to 4, not %d", c.ParanoiaLevel)
	}
	if c.AnomalyThreshold.Inbound < 1 || c.AnomalyThreshold.Inbound > 10000 {
		p.Errorf(cfg, "anomaly_threshold.inbound", "waf: inbound threshold must be 1 to 10000, not %d", c.AnomalyThreshold.Inbound)
	}
	if c.Mode != ModeBlock && c.Mode != ModeDetect {
		p.Errorf(cfg, "mode", "waf: mode must be block or detect, not %q", c.Mode)
	}
	for i, id := range c.Exclude.IDs {
		if id < 1 || id > 9999999 {
			p.Errorf(cfg, config.Index("exclude.ids", i), "waf: %d is not a rule id", id)
		}
	}
	for i, tag := range c.Exclude.Tags {
		if tag == "" || strings.ContainsAny(tag, " \t\r\n\"'\\") {
			p.Errorf(cfg, config.Index("exclude.tags", i), "waf: %q is not a rule tag", tag)
		}
	}
	for i, pl := range c.Platform {
		if pl == "all" {
			if len(c.Platform) > 1 {
				p.Errorf(cfg, config.Index("platform", i), "waf: platform all stands alone")
			}
		} else if !slices.Contains(Platforms, pl) {
			p.Errorf(cfg, config.Index("platform", i), "waf: unknown platform %q (known: all, %s)", pl, strings.Join(Platforms, ", "))
		}
	}
	if c.Inspect.BodyLimit < 1 || c.Inspect.BodyLimit > maxBodyLimit {
		p.Errorf(cfg, "inspect.body_limit", "waf: body_limit must be 1B to 16MiB")
	}
	if c.Inspect.MaxArgs < 1 || c.Inspect.MaxArgs > 10000 {
		p.Errorf(cfg, "inspect.max_args", "waf: max_args must be 1 to 10000, not %d", c.Inspect.MaxArgs)
	}
	for i, d := range c.Directives {
		if strings.ContainsAny(d, "\r\n") {
			p.Errorf(cfg, config.Index("directives", i), "waf: one directive per entry (no line breaks; no continuation lines)")
		} else if strings.HasPrefix(strings.TrimSpace(d), "Include") {
			p.Errorf(cfg, config.Index("directives", i), "waf: Include is not allowed in directives")
		}
	}
	for i, m := range c.AllowedMethods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t'\"\\") {
			p.Errorf(cfg, config.Index("allowed_methods", i), "waf: %q is not an HTTP method in upper case", m)
		}
	}
	return p.Err()
}

// provision returns the settings of a validated c.
func (c *Config) provision() *settings {
	s := &settings{
		paranoia:    c.ParanoiaLevel,
		inbound:     c.AnomalyThreshold.Inbound,
		mode:        c.Mode,
		excludeIDs:  slices.Clone(c.Exclude.IDs),
		excludeTags: slices.Clone(c.Exclude.Tags),
		platforms:   slices.Clone(c.Platform),
		inspect: inspect{query: c.Inspect.Query, headers: c.Inspect.Headers, cookies: c.Inspect.Cookies, body: c.Inspect.Body,
			bodyLimit: int64(c.Inspect.BodyLimit), maxArgs: c.Inspect.MaxArgs},
		directives: slices.Clone(c.Directives),
		methods:    slices.Clone(c.AllowedMethods),
	}
	if c.Platform == nil {
		s.platforms = slices.Clone(DefaultPlatforms)
	}
	slices.Sort(s.platforms)
	s.platforms = slices.Compact(s.platforms)
	return s
}
