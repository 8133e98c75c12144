package headers

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the headers policy's settings. Every part is optional.
//
//	headers:
//	  request:  {set: {X-Gateway: gatehouse}, add: {}, remove: [X-Debug]}
//	  response: {remove: [Server, X-Powered-By]}
//	  security:
//	    hsts: {max_age: 8760h, include_subdomains: true}
//	    content_type_options: true
//	    frame_options: DENY
//	    referrer_policy: no-referrer
type Config struct {
	// Request edits the request headers before they reach the upstream.
	Request Ops `yaml:"request"`
	// Response edits the response headers before they reach the client,
	// for upstream responses and the gateway's own (denials, errors) alike.
	Response Ops `yaml:"response"`
	// Security sets well-known security headers on responses.
	Security Security `yaml:"security"`
}

// Ops edits one header section. Remove runs first, then Set, then Add.
// Names are HTTP field names (case-insensitive); values must not contain
// control characters other than tab. Hop-by-hop and framing headers
// (Connection, Transfer-Encoding, Content-Length, Host, Upgrade,
// Keep-Alive, TE, Trailer, Proxy-*) belong to the gateway and are refused.
type Ops struct {
	// Set replaces every value of a header with the one given.
	Set map[string]string `yaml:"set"`
	// Add appends a value to a header, keeping those already there.
	Add map[string]string `yaml:"add"`
	// Remove deletes headers.
	Remove []string `yaml:"remove"`
}

// Security holds the response security headers. Each is sent only when
// set, and replaces whatever the upstream sent for that header.
type Security struct {
	// HSTS sends Strict-Transport-Security, on TLS connections only (RFC
	// 6797 §7.2: browsers ignore it over plain HTTP).
	HSTS *HSTS `yaml:"hsts"`
	// ContentTypeOptions sends X-Content-Type-Options: nosniff.
	ContentTypeOptions bool `yaml:"content_type_options"`
	// FrameOptions sends X-Frame-Options: DENY or SAMEORIGIN.
	FrameOptions string `yaml:"frame_options"`
	// ReferrerPolicy sends Referrer-Policy: one W3C Referrer Policy token,
	// or a comma-separated list of them (fallbacks, last one supported
	// wins).
	ReferrerPolicy string `yaml:"referrer_policy"`
	// ContentSecurityPolicy sends Content-Security-Policy as given.
	ContentSecurityPolicy string `yaml:"content_security_policy"`
	// CrossOriginResourcePolicy sends Cross-Origin-Resource-Policy:
	// same-site, same-origin or cross-origin.
	CrossOriginResourcePolicy string `yaml:"cross_origin_resource_policy"`
	// PermissionsPolicy sends Permissions-Policy as given.
	PermissionsPolicy string `yaml:"permissions_policy"`
}

// HSTS configures Strict-Transport-Security.
type HSTS struct {
	// MaxAge is how long browsers remember to use HTTPS only, in whole
	// seconds. 0 or absent: 8760h (365 days).
	MaxAge config.Duration `yaml:"max_age"`
	// IncludeSubdomains adds includeSubDomains.
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload adds preload. The browsers' preload list requires
	// includeSubDomains and a max-age of at least a year.
	Preload bool `yaml:"preload"`
}

// DefaultHSTSMaxAge is the HSTS max-age when none is given.
const DefaultHSTSMaxAge = 365 * 24 * time.Hour

// minPreloadMaxAge is the preload list's minimum max-age (hstspreload.org).
const minPreloadMaxAge = 365 * 24 * time.Hour

// referrerPolicies are the tokens of W3C Referrer Policy §3.
var referrerPolicies = []string{
	"no-referrer", "no-referrer-when-downgrade", "same-origin", "origin",
	"strict-origin", "origin-when-cross-origin",
	"strict-origin-when-cross-origin", "unsafe-url",
}

var corpValues = []string{"same-site", "same-origin", "cross-origin"}

// field is one header to write.
type field struct {
	key, value string
}

// ops is a compiled Ops: canonical names, sorted for a stable order.
type ops struct {
	remove   []string
	set, add []field
}

// compiled is a validated Config.
type compiled struct {
	req, resp ops
	hsts      string // Strict-Transport-Security value; "" none
}

// decode builds the header edits of cfg: the Config decoded strictly,
// validated, provisioned. There is no I/O in any step.
func decode(cfg *config.Node) (*compiled, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(), nil
}

// validate checks c, reporting every problem at its place: names and
// values, names given twice (compared as canonical names, as HTTP
// compares them), security values, a security header also in
// response.set.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	c.Request.validate(&p, cfg, "request")
	respSet := c.Response.validate(&p, cfg, "response")
	c.Security.validate(&p, cfg, respSet)
	if p.Len() == 0 && c.Request.empty() && c.Response.empty() && c.Security.empty() {
		p.Errorf(cfg, "", "headers needs request, response or security settings")
	}
	return p.Err()
}

// validate records the problems of o, at side, and returns the canonical
// names of its acceptable set fields.
func (o *Ops) validate(p *config.Problems, cfg *config.Node, side string) (set []string) {
	var removed []string
	for i, name := range o.Remove {
		at := config.Index(side+".remove", i)
		key, ok := checkName(p, cfg, at, name)
		switch {
		case !ok:
		case slices.Contains(removed, key):
			p.Errorf(cfg, at, "%s is removed twice", key)
		default:
			removed = append(removed, key)
		}
	}
	set = validateFields(p, cfg, side+".set", o.Set)
	validateFields(p, cfg, side+".add", o.Add)
	return set
}

// validateFields records the problems of the fields m at at, and returns
// the canonical names of the acceptable ones.
func validateFields(p *config.Problems, cfg *config.Node, at string, m map[string]string) []string {
	var keys []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		path := at + config.KeySeg(name)
		key, ok := checkName(p, cfg, path, name)
		if !ok {
			continue
		}
		if slices.Contains(keys, key) {
			p.Errorf(cfg, path, "%s is given twice (header names are case-insensitive)", key)
			continue
		}
		if checkValue(p, cfg, path, m[name]) {
			keys = append(keys, key)
		}
	}
	return keys
}

func (o *Ops) empty() bool { return len(o.Remove) == 0 && len(o.Set) == 0 && len(o.Add) == 0 }

// validate records the problems of s; respSet are the canonical names
// response.set gives, which no security header may repeat.
func (s *Security) validate(p *config.Problems, cfg *config.Node, respSet []string) {
	check := func(at, key, value string) {
		if !checkValue(p, cfg, at, value) {
			return
		}
		if slices.Contains(respSet, key) {
			p.Errorf(cfg, at, "%s is also in response.set; give it once", key)
		}
	}
	if s.ContentTypeOptions {
		check("security.content_type_options", "X-Content-Type-Options", "nosniff")
	}
	if s.FrameOptions != "" {
		if v := strings.ToUpper(s.FrameOptions); v != "DENY" && v != "SAMEORIGIN" {
			p.Errorf(cfg, "security.frame_options", "invalid value %q (want DENY or SAMEORIGIN)", s.FrameOptions)
		} else {
			check("security.frame_options", "X-Frame-Options", v)
		}
	}
	if s.ReferrerPolicy != "" {
		ok := true
		for _, tok := range strings.Split(s.ReferrerPolicy, ",") {
			if tok = strings.TrimSpace(tok); !slices.Contains(referrerPolicies, tok) {
				p.Errorf(cfg, "security.referrer_policy", "invalid referrer policy %q (want one of %s)", tok, strings.Join(referrerPolicies, ", "))
				ok = false
				break
			}
		}
		if ok {
			check("security.referrer_policy", "Referrer-Policy", s.ReferrerPolicy)
		}
	}
	if s.ContentSecurityPolicy != "" {
		check("security.content_security_policy", "Content-Security-Policy", s.ContentSecurityPolicy)
	}
	if s.CrossOriginResourcePolicy != "" {
		if !slices.Contains(corpValues, s.CrossOriginResourcePolicy) {
			p.Errorf(cfg, "security.cross_origin_resource_policy", "invalid value %q (want one of %s)", s.CrossOriginResourcePolicy, strings.Join(corpValues, ", "))
		} else {
			check("security.cross_origin_resource_policy", "Cross-Origin-Resource-Policy", s.CrossOriginResourcePolicy)
		}
	}
	if s.PermissionsPolicy != "" {
		check("security.permissions_policy", "Permissions-Policy", s.PermissionsPolicy)
	}
	if h := s.HSTS; h != nil {
		maxAge := h.maxAge()
		if maxAge%time.Second != 0 {
			p.Errorf(cfg, "security.hsts.max_age", "must be whole seconds, got %s", maxAge)
		}
		if h.Preload {
			if !h.IncludeSubdomains {
				p.Errorf(cfg, "security.hsts.preload", "preload requires include_subdomains: true (HSTS preload list rule)")
			}
			if maxAge < minPreloadMaxAge {
				p.Errorf(cfg, "security.hsts.max_age", "preload requires a max_age of at least 8760h (one year), got %s", maxAge)
			}
		}
		if slices.Contains(respSet, "Strict-Transport-Security") {
			p.Errorf(cfg, "security.hsts", "Strict-Transport-Security is also in response.set; give it once")
		}
	}
}

// empty reports whether s sends no header.
func (s *Security) empty() bool { return *s == Security{} }

func (h *HSTS) maxAge() time.Duration { return cmp.Or(h.MaxAge.Std(), DefaultHSTSMaxAge) }

// provision compiles a validated c: canonical names, fields sorted for a
// stable order, the security headers as response sets (they replace
// upstream values) and the HSTS value.
func (c *Config) provision() *compiled {
	out := &compiled{req: c.Request.compile(), resp: c.Response.compile()}
	s := &c.Security
	var sec []field
	if s.ContentTypeOptions {
		sec = append(sec, field{"X-Content-Type-Options", "nosniff"})
	}
	if s.FrameOptions != "" {
		sec = append(sec, field{"X-Frame-Options", strings.ToUpper(s.FrameOptions)})
	}
	if s.ReferrerPolicy != "" {
		sec = append(sec, field{"Referrer-Policy", s.ReferrerPolicy})
	}
	if s.ContentSecurityPolicy != "" {
		sec = append(sec, field{"Content-Security-Policy", s.ContentSecurityPolicy})
	}
	if s.CrossOriginResourcePolicy != "" {
		sec = append(sec, field{"Cross-Origin-Resource-Policy", s.CrossOriginResourcePolicy})
	}
	if s.PermissionsPolicy != "" {
		sec = append(sec, field{"Permissions-Policy", s.PermissionsPolicy})
	}
	if h := s.HSTS; h != nil {
		v := "max-age=" + strconv.FormatInt(int64(h.maxAge()/time.Second), 10)
		if h.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.Preload {
			v += "; preload"
		}
		out.hsts = v
	}
	out.resp.set = append(out.resp.set, sec...)
	slices.SortFunc(out.resp.set, func(a, b field) int { return strings.Compare(a.key, b.key) })
	return out
}

// compile returns the validated o with canonical names, sorted.
func (o *Ops) compile() ops {
	out := ops{set: compileFields(o.Set), add: compileFields(o.Add)}
	for _, name := range o.Remove {
		out.remove = append(out.remove, http.CanonicalHeaderKey(name))
	}
	slices.Sort(out.remove)
	return out
}

func compileFields(m map[string]string) []field {
	out := make([]field, 0, len(m))
	for name, v := range m {
		out = append(out, field{http.CanonicalHeaderKey(name), v})
	}
	slices.SortFunc(out, func(a, b field) int { return strings.Compare(a.key, b.key) })
	return out
}

// reserved reports whether the canonical header key belongs to the
// gateway's handling of the connection and message framing; editing one
// would desynchronise framing (request smuggling) or break proxying.
func reserved(key string) bool {
	switch key {
	case "Connection", "Transfer-Encoding", "Content-Length", "Host",
		"Upgrade", "Keep-Alive", "Te", "Trailer":
		return true
	}
	return strings.HasPrefix(key, "Proxy-")
}

// checkName records a problem with a header name and returns its
// canonical form, and whether it is acceptable.
func checkName(p *config.Problems, cfg *config.Node, at, name string) (string, bool) {
	if !config.IsToken(name) {
		p.Errorf(cfg, at, "invalid header name %q (want an RFC 9110 token)", name)
		return "", false
	}
	key := http.CanonicalHeaderKey(name)
	if reserved(key) {
		p.Errorf(cfg, at, "%s is a hop-by-hop or framing header managed by the gateway and cannot be changed", key)
		return "", false
	}
	return key, true
}

// checkValue refuses control characters other than tab: CR and LF would
// inject headers, NUL and the rest are refused by HTTP/1.1 and HTTP/2
// parsers, so the request would fail later instead of at load. It
// reports whether v is acceptable.
func checkValue(p *config.Problems, cfg *config.Node, at, v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			p.Errorf(cfg, at, "header value contains control character %q at byte %d (CR, LF and NUL could inject headers)", c, i)
			return false
		}
	}
	return true
}
