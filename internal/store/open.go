package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Defaults of the store config.
const (
	DefaultPath         = "gatehouse-state.db"
	DefaultKeyPrefix    = "gatehouse:"
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
)

// FieldError is a problem with one field of the store config. Field is
// the path below "store", like "redis.addresses[1]"; the gateway turns it
// into a config error with the file and line.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "store: " + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Open builds the store cfg describes: "file" (the default, at Path
// relative to baseDir, default DefaultPath), "memory" or "redis". now is
// the clock of the memory and file stores (nil: time.Now; Redis uses its
// own). Config problems are a *FieldError; a file held by another process
// is a plain error.
func Open(cfg config.Store, baseDir string, now func() time.Time) (Store, error) {
	plan, err := validate(cfg, baseDir)
	if err != nil {
		return nil, err
	}
	switch {
	case plan.redis != nil:
		return NewRedis(*plan.redis)
	case plan.path != "":
		f, err := OpenFile(plan.path, now)
		if err != nil {
			return nil, &FieldError{Field: "path", Err: err}
		}
		return f, nil
	}
	return NewMemory(now), nil
}

// Validate checks cfg as Open would, reading the TLS files but opening
// nothing, so that `gatehouse check` can report store mistakes without
// taking the state file's lock or connecting to Redis.
func Validate(cfg config.Store, baseDir string) error {
	_, err := validate(cfg, baseDir)
	return err
}

// plan is what a valid config opens: a file path, Redis options, or
// neither (memory).
type plan struct {
	path  string
	redis *RedisOptions
}

func validate(cfg config.Store, baseDir string) (plan, error) {
	switch cfg.Type {
	case "", "file":
		if cfg.Redis != nil {
			return plan{}, fieldErr("redis", "only for type: redis")
		}
		p := cfg.Path
		if p == "" {
			p = DefaultPath
		}
		if strings.ContainsRune(p, 0) {
			return plan{}, fieldErr("path", "invalid path %q", p)
		}
		if !filepath.IsAbs(p) && baseDir != "" {
			p = filepath.Join(baseDir, p)
		}
		return plan{path: p}, nil
	case "memory":
		if cfg.Path != "" {
			return plan{}, fieldErr("path", "only for type: file")
		}
		if cfg.Redis != nil {
			return plan{}, fieldErr("redis", "only for type: redis")
		}
		return plan{}, nil
	case "redis":
		if cfg.Path != "" {
			return plan{}, fieldErr("path", "only for type: file")
		}
		if cfg.Redis == nil {
			return plan{}, fieldErr("redis", "required for type: redis")
		}
		o, err := redisOptions(cfg.Redis, baseDir)
		return plan{redis: o}, err
	}
	return plan{}, fieldErr("type", "unknown store type %q (want memory, file or redis)", cfg.Type)
}

// checkAddrs checks that every address is host:port.
func checkAddrs(field string, addrs []string) error {
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "invalid address %q: want host:port", a)
		}
	}
	return nil
}

func redisOptions(c *config.Redis, baseDir string) (*RedisOptions, error) {
	var sentinel *SentinelOptions
	if s := c.Sentinel; s != nil {
		if len(c.Addresses) > 0 {
			return nil, fieldErr("redis.addresses", "not with sentinel: the sentinels name the master")
		}
		if s.MasterName == "" {
			return nil, fieldErr("redis.sentinel.master_name", "required: the name the sentinels monitor the master under")
		}
		if len(s.Addresses) == 0 {
			return nil, fieldErr("redis.sentinel.addresses", "at least one sentinel host:port is required")
		}
		if err := checkAddrs("redis.sentinel.addresses", s.Addresses); err != nil {
			return nil, err
		}
		if s.Username != "" && (s.Password == nil || s.Password.Value() == "") {
			return nil, fieldErr("redis.sentinel.password", "required with a username (a username alone is never sent)")
		}
		sentinel = &SentinelOptions{MasterName: s.MasterName, Addrs: s.Addresses, Username: s.Username}
		if s.Password != nil {
			sentinel.Password = s.Password.Value()
		}
	} else if len(c.Addresses) == 0 {
		return nil, fieldErr("redis.addresses", "at least one host:port is required (or sentinel)")
	}
	if err := checkAddrs("redis.addresses", c.Addresses); err != nil {
		return nil, err
	}
	if c.Username != "" && (c.Password == nil || c.Password.Value() == "") {
		return nil, fieldErr("redis.password", "required with a username (a username alone is never sent)")
	}
	if len(c.Addresses) > 1 && c.DB != 0 {
		return nil, fieldErr("redis.db", "a Redis Cluster (several addresses) has only database 0")
	}
	if c.DB < 0 {
		return nil, fieldErr("redis.db", "must not be negative")
	}
	if c.PoolSize < 0 {
		return nil, fieldErr("redis.pool_size", "must not be negative")
	}
	prefix := c.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fieldErr("redis.key_prefix", "%q must not contain { or } (they would set the cluster hash tag)", prefix)
	}
	timeout := func(field string, d config.Duration, def time.Duration) (time.Duration, error) {
		if d < 0 {
			return 0, fieldErr("redis."+field, "must not be negative")
		}
		if d == 0 {
			return def, nil
		}
		return d.Std(), nil
	}
	o := &RedisOptions{Addrs: c.Addresses, Sentinel: sentinel, Username: c.Username, DB: c.DB, KeyPrefix: prefix, PoolSize: c.PoolSize}
	var err error
	if o.DialTimeout, err = timeout("dial_timeout", c.DialTimeout, DefaultDialTimeout); err != nil {
		return nil, err
	}
	if o.ReadTimeout, err = timeout("read_timeout", c.ReadTimeout, DefaultReadTimeout); err != nil {
		return nil, err
	}
	if o.WriteTimeout, err = timeout("write_timeout", c.WriteTimeout, DefaultWriteTimeout); err != nil {
		return nil, err
	}
	if c.Password != nil {
		o.Password = c.Password.Value()
	}
	if c.TLS != nil {
		if o.TLS, err = redisTLS(c.TLS, baseDir); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func redisTLS(c *config.UpstreamTLS, baseDir string) (*tls.Config, error) {
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) || baseDir == "" {
			return p
		}
		return filepath.Join(baseDir, p)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // for tests only, documented
	if c.CAFile != "" {
		pemBytes, err := os.ReadFile(resolve(c.CAFile))
		if err != nil {
			return nil, &FieldError{Field: "redis.tls.ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, &FieldError{Field: "redis.tls.ca_file", Err: errors.New("no PEM certificate found")}
		}
		tc.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fieldErr("redis.tls.cert_file", "cert_file and key_file go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(c.CertFile), resolve(c.KeyFile))
		if err != nil {
			return nil, &FieldError{Field: "redis.tls.cert_file", Err: err}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
