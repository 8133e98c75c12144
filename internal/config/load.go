package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path and loads it with LoadBytes, taking
// environment variables from the process.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// data is Load's own: the config keeps it as its text, uncopied.
	return loaded(load(path, data, os.LookupEnv))
}

// LoadBytes parses data as a config file named file, expands environment
// variables with lookupEnv (nil means none is set), decodes it strictly,
// fills in defaults and validates it. file is used in error messages and as
// the base of relative secret file paths; it is not read.
//
// On failure it returns nil and an Errors holding every problem found,
// sorted by line, each with the file, line, column and field path. TLS
// files are not read here: the gateway does that and reports with
// Config.Errorf.
func LoadBytes(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	// The config keeps its text (load): a copy, data being the caller's.
	return loaded(load(file, bytes.Clone(data), lookupEnv))
}

// loaded is LoadBytes' result from load's.
func loaded(c *Config, errs Errors) (*Config, error) {
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// load is LoadBytes returning the config decoded as far as it could be
// (nil when the document did not parse) with every problem found. The
// config keeps data as its text: the caller must not change it after.
func load(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, Errors) {
	d := newDoc(file, lookupEnv)
	root, aliased, errs := parseDocument(file, data, false)
	if root == nil {
		return nil, errs
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: root.Line, Column: root.Column,
			Msg: "the top level must be a mapping, got " + describe(root)}}
	}
	if mayReference(data) {
		errs = append(errs, expandTree(root, d, aliased)...)
	}

	var c Config
	dc := &decoder{d: d, strs: make(map[string]string)}
	dc.value(root, nil, "", reflect.ValueOf(&c).Elem())
	errs = append(errs, dc.errs...)
	c.root = &Node{y: root, d: d}
	d.source = data

	applyDefaults(&c)
	// A value that failed to decode was left unset, so validation would
	// complain again ("url is required" after "expected a string"). Drop
	// validation errors at or below a place that already has one.
	for _, e := range c.validate() {
		if !overlapsAny(e.Path, errs) {
			errs = append(errs, e)
		}
	}
	return &c, errs
}

// mayReference reports whether a scalar of the document data may hold a
// "$", the only values expandTree changes: a "$" in the text, or an escape
// in a double-quoted scalar ("\x24"), is needed for one. Most configs have
// neither, and are spared the walk of every node (15 ms at 10,000 routes).
func mayReference(data []byte) bool {
	return bytes.IndexByte(data, '$') >= 0 || bytes.IndexByte(data, '\\') >= 0
}

func overlapsAny(path string, errs Errors) bool {
	for _, e := range errs {
		if pathWithin(path, e.Path) {
			return true
		}
	}
	return false
}

// pathWithin reports whether path is inner or below it.
func pathWithin(path, inner string) bool {
	if !strings.HasPrefix(path, inner) {
		return false
	}
	rest := path[len(inner):]
	return rest == "" || inner == "" || rest[0] == '.' || rest[0] == '['
}

// Errorf returns a *Error at path, a dotted path from the document root
// such as "routes[2].upstream.url" or "listeners[0].tls.cert_file", with
// the file, line and column of that place in the loaded file (or of its
// nearest existing ancestor). The gateway uses it for problems found while
// building from a valid config: an unreadable certificate, ambiguous
// routes. On a Config not made by Load, the error has the path only. When an
// argument is an error, it becomes the *Error's cause for errors.Is.
func (c *Config) Errorf(path, format string, args ...any) error {
	if c == nil || c.root == nil {
		return &Error{Path: path, Msg: fmt.Sprintf(format, args...), cause: errorArg(args)}
	}
	return c.root.Errorf(path, format, args...)
}

// TrustedPrefixes returns the trusted proxies (client_ip.trusted_proxies,
// or the top-level trusted_proxies when that is not given) parsed: CIDRs
// as written (IPv4 in IPv6 unmapped), single addresses as /32 or /128.
// Entries that do not parse are skipped; Load has refused them already, so
// after a successful Load every entry is there. Nil when none is trusted.
func (c *Config) TrustedPrefixes() []netip.Prefix {
	list := c.TrustedProxies
	if c.ClientIP != nil && c.ClientIP.TrustedProxies != nil {
		list = c.ClientIP.TrustedProxies
	}
	var out []netip.Prefix
	for _, s := range list {
		if p, err := parseTrustedProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseTrustedProxy parses a CIDR or a single IP address.
func parseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("CIDR %q has bits set beyond its mask: did you mean %s?", s, m)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address or CIDR %q", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("IP address %q must not have a zone", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
