package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// validate checks the decoded, defaulted config and returns every problem,
// each at its path. It normalizes as it goes: route methods are upper-cased
// and hosts lower-cased.
func (c *Config) validate() Errors {
	v := &validator{c: c}
	c.validateListeners(v)
	c.validateAdmin(v)
	for i, s := range c.TrustedProxies {
		if _, err := parseTrustedProxy(s); err != nil {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		}
	}
	c.validateClientIP(v)
	if strings.ContainsRune(c.AccessLog.Output, 0) {
		v.add("access_log.output", "invalid path %q", c.AccessLog.Output)
	}
	c.validateRoutes(v)
	c.validateAuthorizationServer(v)
	c.validateSTS(v)
	c.validateTracing(v)
	c.validateDoors(v)
	return v.errs
}

// validateAdmin checks the admin listener and the audit log. The admin API
// can read the config and revoke tokens, so it is refused on an address
// others can reach unless it asks for a token or a client certificate.
func (c *Config) validateAdmin(v *validator) {
	a := &c.Admin
	if a.Address != "off" {
		if err := checkHostPort(a.Address); err != nil {
			v.add("admin.address", "%v (or \"off\")", err)
		} else if !IsLoopbackAddress(a.Address) && a.Token == nil && (a.TLS == nil || a.TLS.ClientCAFile == "") {
			v.add("admin.address", "%q is not a loopback address: set admin.token or admin.tls with client_ca_file, or bind to 127.0.0.1", a.Address)
		}
	}
	if a.Token != nil && len(a.Token.Value()) < 16 {
		v.add("admin.token", "must be at least 16 characters")
	}
	if t := a.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			v.add("admin.tls", "cert_file and key_file are required")
		}
		if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
			v.add("admin.tls.min_version", "must be \"1.2\" or \"1.3\", got %q", t.MinVersion)
		}
	}
	if a.DecisionHistory < 0 || a.DecisionHistory > 1_000_000 {
		v.add("admin.decision_history", "must be between 1 and 1000000, got %d", a.DecisionHistory)
	}
	if strings.ContainsRune(c.Audit.Output, 0) {
		v.add("audit.output", "invalid path %q", c.Audit.Output)
	}
	if c.Audit.MaxFiles < 0 || c.Audit.MaxFiles > 1000 {
		v.add("audit.max_files", "must be between 1 and 1000, got %d", c.Audit.MaxFiles)
	}
	if c.Audit.MaxSize < 4096 {
		v.add("audit.max_size", "must be at least 4KiB, got %s", c.Audit.MaxSize)
	}
}

// IsLoopbackAddress reports whether the host of host:port is a loopback
// address or "localhost". An empty host (all interfaces) is not.
func IsLoopbackAddress(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.Errorf(path, format, args...).(*Error))
}

// line returns the line a path starts at, for "first at line N" messages.
func (v *validator) line(path string) int {
	return v.c.Errorf(path, "").(*Error).Line
}

var clientAuthModes = map[string]bool{
	"none": true, "request": true, "require": true, "verify_if_given": true, "require_and_verify": true,
}

func (c *Config) validateListeners(v *validator) {
	if len(c.Listeners) == 0 {
		v.add("listeners", "at least one listener is required")
	}
	names := make(map[string]string)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if first, dup := names[l.Name]; dup {
			v.add(p+".name", "duplicate listener name %q (first at line %d)", l.Name, v.line(first))
		} else {
			names[l.Name] = p + ".name"
		}
		if l.MaxConnections < -1 {
			v.add(p+".max_connections", "must be a positive number, or -1 for no bound")
		}
		if l.MaxConnectionsPerIP < -1 {
			v.add(p+".max_connections_per_ip", "must be a positive number, or -1 for no bound")
		}
		if l.Address == "" {
			v.add(p+".address", "required field is missing")
		} else if err := checkHostPort(l.Address); err != nil {
			v.add(p+".address", "%v", err)
		}
		if l.TLS == nil {
			continue
		}
		if l.H2C {
			v.add(p+".h2c", "h2c is for plain listeners; a TLS listener speaks HTTP/2 through ALPN")
		}
		t := l.TLS
		if t.CertFile == "" {
			v.add(p+".tls.cert_file", "required field is missing")
		}
		if t.KeyFile == "" {
			v.add(p+".tls.key_file", "required field is missing")
		}
		if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
			v.add(p+".tls.min_version", "invalid TLS version %q (want \"1.2\" or \"1.3\")", t.MinVersion)
		}
		switch {
		case !clientAuthModes[t.ClientAuth]:
			v.add(p+".tls.client_auth", "invalid client_auth %q (want none, request, require, verify_if_given or require_and_verify)", t.ClientAuth)
		case (t.ClientAuth == "verify_if_given" || t.ClientAuth == "require_and_verify") && t.ClientCAFile == "":
			v.add(p+".tls.client_ca_file", "required when client_auth is %s", t.ClientAuth)
		}
	}
}

func (c *Config) validateRoutes(v *validator) {
	// A route's paths are made only for its problems: ten thousand
	// routes would otherwise format some fifty thousand strings to
	// report nothing (issue 23).
	first := make(map[string]int, len(c.Routes)) // route name -> index of its first route
	urls := make(map[string]parsedURL)           // each distinct upstream URL parsed once
	for i := range c.Routes {
		r := &c.Routes[i]
		p := func() string { return "routes[" + strconv.Itoa(i) + "]" }
		switch j, dup := first[r.Name]; {
		case r.Name == "":
			v.add(p()+".name", "required field is missing")
		case dup:
			v.add(p()+".name", "duplicate route name %q (first at line %d)", r.Name, v.line("routes["+strconv.Itoa(j)+"].name"))
		default:
			first[r.Name] = i
		}
		validateMatch(v, func() string { return p() + ".match" }, &r.Match)
		if r.SOAP != "" && r.SOAP != "1.1" && r.SOAP != "1.2" {
			v.add(p()+".soap", "invalid SOAP version %q (want \"1.1\" or \"1.2\", or leave it out for REST)", r.SOAP)
		}
		switch {
		case r.SOAPFaultStatus != 0 && r.SOAPFaultStatus != 500:
			v.add(p()+".soap_fault_status", "invalid status %d (want 500, WS-I Basic Profile R1126, or leave it out)", r.SOAPFaultStatus)
		case r.SOAPFaultStatus != 0 && r.SOAP != "1.1":
			v.add(p()+".soap_fault_status", "only SOAP 1.1 routes (soap: \"1.1\") take a fault status; SOAP 1.2 maps faults to statuses itself")
		}
		pu, ok := urls[r.Upstream.URL]
		if !ok {
			pu.u, pu.err = url.Parse(r.Upstream.URL)
			urls[r.Upstream.URL] = pu
		}
		validateUpstream(v, func() string { return p() + ".upstream" }, &r.Upstream, pu)
	}
}

// parsedURL is an upstream URL parsed (url.Parse), shared by the routes
// with that URL: validateUpstream only reads it.
type parsedURL struct {
	u   *url.URL
	err error
}

// validateMatch checks a route's match; p makes its path, for problems.
func validateMatch(v *validator, p func() string, m *Match) {
	switch {
	case m.Path != "" && m.PathPrefix != "":
		v.add(p()+".path_prefix", "path and path_prefix are mutually exclusive")
	case m.Path == "" && m.PathPrefix == "":
		v.add(p(), "one of path or path_prefix is required")
	case m.Path != "":
		if err := checkPath(m.Path); err != nil {
			v.add(p()+".path", "%v", err)
		}
	default:
		if err := checkPath(m.PathPrefix); err != nil {
			v.add(p()+".path_prefix", "%v", err)
		}
	}
	item := func(field string, i int) string { return p() + "." + field + "[" + strconv.Itoa(i) + "]" }
	for i, meth := range m.Methods {
		if msg := checkMethod(meth, len(m.Methods)); msg != "" {
			v.add(item("methods", i), "%s", msg)
			continue
		}
		if slices.Contains(m.Methods[:i], meth) {
			v.add(item("methods", i), "duplicate method %s", meth)
		}
	}
	for i, h := range m.Hosts {
		h, err := normalizeHost(h)
		if err != nil {
			v.add(item("hosts", i), "%v", err)
			continue
		}
		m.Hosts[i] = h
		if slices.Contains(m.Hosts[:i], h) {
			v.add(item("hosts", i), "duplicate host %s", h)
		}
	}
}

// checkPath is a rough check of a route path or prefix; the router checks
// templates and ambiguity.
func checkPath(s string) error {
	switch {
	case !strings.HasPrefix(s, "/"):
		return fmt.Errorf("path %q must start with /", s)
	case strings.ContainsAny(s, "?#"):
		return fmt.Errorf("path %q must not contain ? or # (match on the path only)", s)
	case strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("path %q must not contain spaces or control characters", s)
	}
	return nil
}

// validateUpstream checks a route's upstream, whose url parsed is; p
// makes its path, for problems.
func validateUpstream(v *validator, p func() string, u *Upstream, parsed parsedURL) {
	if u.MaxIdleConnsPerHost < 0 {
		v.add(p()+".max_idle_conns_per_host", "must not be negative")
	}
	if u.URL == "" {
		v.add(p()+".url", "required field is missing")
		return
	}
	pu, err := parsed.u, parsed.err
	if err != nil {
		v.add(p()+".url", "invalid URL %q: %v", u.URL, unwrapURLError(err))
		return
	}
	switch {
	case pu.Scheme != "http" && pu.Scheme != "https":
		v.add(p()+".url", "URL %q: scheme must be http or https", u.URL)
		return
	case pu.Opaque != "" || pu.Host == "":
		v.add(p()+".url", "URL %q has no host", u.URL)
	case pu.User != nil:
		v.add(p()+".url", "URL %q must not contain user info; use a policy to add credentials", u.URL)
	case pu.RawQuery != "" || pu.ForceQuery:
		v.add(p()+".url", "URL %q must not have a query", u.URL)
	case pu.Fragment != "" || strings.Contains(u.URL, "#"):
		v.add(p()+".url", "URL %q must not have a fragment", u.URL)
	default:
		if port := pu.Port(); port != "" || strings.HasSuffix(pu.Host, ":") {
			if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
				v.add(p()+".url", "URL %q: invalid port %q", u.URL, port)
			}
		}
	}
	if pu.Scheme == "http" && u.TLS != nil {
		v.add(p()+".tls", "tls is only for https upstreams")
	}
	if pu.Scheme == "https" && u.H2C {
		v.add(p()+".h2c", "h2c is only for http upstreams (https negotiates HTTP/2 through ALPN)")
	}
	if u.H2C && u.WebSocket {
		v.add(p()+".websocket", "an h2c upstream cannot take a WebSocket upgrade (it needs HTTP/1.1)")
	}
	if t := u.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			v.add(p()+".tls.cert_file", "required with key_file")
		} else {
			v.add(p()+".tls.key_file", "required with cert_file")
		}
	}
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// checkHostPort checks a listen address: host:port with a numeric port
// 0-65535 and an empty host, an IP address or a DNS name.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid address %q: port must be a number 0-65535", s)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !isDNSName(strings.ToLower(host)) {
		return fmt.Errorf("invalid address %q: host is neither an IP address nor a DNS name", s)
	}
	return nil
}

// normalizeHost lower-cases a route host and checks it is a DNS name or a
// "*.suffix" wildcard, without a port.
func normalizeHost(h string) (string, error) {
	l := strings.ToLower(h)
	switch {
	case l == "":
		return "", fmt.Errorf("empty host")
	case l == "*":
		return "", fmt.Errorf("host %q: leave hosts out to match any host", h)
	case strings.Contains(l, ":") || strings.HasPrefix(l, "["):
		return "", fmt.Errorf("host %q must not contain a port (ports in Host headers are ignored)", h)
	case strings.HasSuffix(l, "."):
		return "", fmt.Errorf("host %q must not end with a dot", h)
	}
	name := strings.TrimPrefix(l, "*.")
	if strings.Contains(name, "*") {
		return "", fmt.Errorf("host %q: a wildcard must be the whole leftmost label, like *.example.com", h)
	}
	if !isDNSName(name) {
		return "", fmt.Errorf("invalid host %q: not a DNS name", h)
	}
	return l, nil
}

// isDNSName reports whether s (lower case) is a DNS name: dot-separated
// labels of 1-63 letters, digits, hyphens (not at either end) and
// underscores (found in real internal names), 253 bytes at most.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// IsToken reports whether s is an RFC 9110 token: the syntax of method,
// header field and cookie names. Policies validate such names with it.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
