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

func decode(cfg *config.Node) (limits, error) {
	var c Config
	l := limits{body: -1, headers: -1, url: -1, headerCount: -1, queryParams: -1}
	if err := cfg.Decode(&c); err != nil {
		return l, err
	}
	if c.Body == nil && c.Headers == nil && c.HeaderCount == nil && c.URL == nil && c.QueryParams == nil {
		return l, cfg.Errorf("", "size_limit needs at least one of body, headers, header_count, url, query_params")
	}
	if c.Body != nil {
		l.body = c.Body.Bytes()
	}
	if c.Headers != nil {
		if *c.Headers == 0 {
			return l, cfg.Errorf("headers", "must be greater than 0")
		}
		l.headers = c.Headers.Bytes()
	}
	if c.URL != nil {
		if *c.URL == 0 {
			return l, cfg.Errorf("url", "must be greater than 0")
		}
		l.url = c.URL.Bytes()
	}
	if c.HeaderCount != nil {
		if *c.HeaderCount <= 0 {
			return l, cfg.Errorf("header_count", "must be greater than 0")
		}
		l.headerCount = *c.HeaderCount
	}
	if c.QueryParams != nil {
		if *c.QueryParams < 0 {
			return l, cfg.Errorf("query_params", "must not be negative")
		}
		l.queryParams = *c.QueryParams
	}
	return l, nil
}
