package sizelimit

import (
	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the size_limit policy's settings. Every limit is optional
// (absent or null: not checked), but at least one must be given.
//
//	size_limit:
//	  body: 1MiB
//	  headers: 16KiB
//	  header_count: 100
//	  url: 8KiB
//	  query_params: 100
type Config struct {
	// Body caps the request body. 0 refuses any body.
	Body *config.ByteSize `yaml:"body"`
	// Headers caps the header section: the request URI plus, for every
	// header line including Host, len(name)+len(value)+4 (": " and CRLF).
	Headers *config.ByteSize `yaml:"headers"`
	// HeaderCount caps the number of header lines, Host included.
	HeaderCount *int `yaml:"header_count"`
	// URL caps the request target (path and query) as sent by the client.
	URL *config.ByteSize `yaml:"url"`
	// QueryParams caps the number of query parameters (non-empty
	// &-separated fields of the query string).
	QueryParams *int `yaml:"query_params"`
}

// limits is a validated Config; -1 is "not checked".
type limits struct {
	body, headers, url       int64
	headerCount, queryParams int
}

// decode builds the limits of cfg: strict decoding, validate, provision.
func decode(cfg *config.Node) (limits, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return limits{}, err
	}
	if err := c.validate(cfg); err != nil {
		return limits{}, err
	}
	return c.provision(), nil
}

// validate checks c, reporting every independent problem at its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Body == nil && c.Headers == nil && c.HeaderCount == nil && c.URL == nil && c.QueryParams == nil {
		p.Errorf(cfg, "", "size_limit needs at least one of body, headers, header_count, url, query_params")
	}
	if c.Headers != nil && *c.Headers == 0 {
		p.Errorf(cfg, "headers", "must be greater than 0")
	}
	if c.URL != nil && *c.URL == 0 {
		p.Errorf(cfg, "url", "must be greater than 0")
	}
	if c.HeaderCount != nil && *c.HeaderCount <= 0 {
		p.Errorf(cfg, "header_count", "must be greater than 0")
	}
	if c.QueryParams != nil && *c.QueryParams < 0 {
		p.Errorf(cfg, "query_params", "must not be negative")
	}
	return p.Err()
}

// provision returns the limits of a validated c; -1 for those not given.
func (c *Config) provision() limits {
	l := limits{body: -1, headers: -1, url: -1, headerCount: -1, queryParams: -1}
	if c.Body != nil {
		l.body = c.Body.Bytes()
	}
	if c.Headers != nil {
		l.headers = c.Headers.Bytes()
	}
	if c.URL != nil {
		l.url = c.URL.Bytes()
	}
	if c.HeaderCount != nil {
		l.headerCount = *c.HeaderCount
	}
	if c.QueryParams != nil {
		l.queryParams = *c.QueryParams
	}
	return l
}
