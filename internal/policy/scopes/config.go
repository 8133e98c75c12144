package scopes

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the scopes policy's settings.
//
//	scopes:
//	  all: [products]
//	  methods:
//	    GET: [products:read]
//	    POST: [products:write]
//	  any_of: false
//	  realm: gatehouse
type Config struct {
	// All lists the scopes every request needs, whatever its method.
	All []string `yaml:"all"`
	// Methods lists, per request method, the scopes needed on top of All.
	// Keys are upper-case method names (RFC 9110 tokens; methods are
	// case-sensitive). HEAD uses GET's list unless it has its own. When
	// Methods is set, a method it does not list is refused (405
	// method_not_allowed) unless the key "*" gives the scopes of every
	// other method (an empty list: All alone). Without Methods, every
	// method needs All.
	Methods map[string][]string `yaml:"methods"`
	// AnyOf false (the default): every listed scope is needed. True: one
	// scope of each non-empty list (All, and the method's) suffices.
	AnyOf bool `yaml:"any_of"`
	// Realm names the protection space in WWW-Authenticate challenges.
	// Default: the route's realm (its authenticate policy's); set here,
	// it must be the same.
	Realm string `yaml:"realm"`
}

// DefaultRealm is the realm when none is configured.
const DefaultRealm = "gatehouse"

// requirement is what one method needs: every group must be met, and a
// group is met by any one of its scopes. With any_of false each scope is
// a group of its own, so "every group" is "every scope".
type requirement struct {
	groups [][]string
}

// compiled is a validated Config with the requirement of every method
// worked out, so that Apply only looks one up.
type compiled struct {
	realm   string
	anyOf   bool
	methods map[string]*requirement
	// other is the requirement of methods not in methods: All alone
	// without Methods, All and Methods["*"] with it, nil (refused) when
	// Methods lists methods but not "*".
	other *requirement
	// allow is the Allow value of a refused method: the methods listed,
	// sorted, HEAD included where GET gives it.
	allow string
}

// AnyOtherMethod is the methods key that gives the scopes of every
// method not listed.
const AnyOtherMethod = "*"

// decode builds the requirements of cfg: strict decoding, validate,
// provision.
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

// validate checks c, reporting every bad scope and method at its place.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	checkScopes(&p, cfg, "all", c.All)
	total := len(c.All)
	for _, m := range slices.Sorted(maps.Keys(c.Methods)) {
		field := "methods" + config.KeySeg(m)
		if m != AnyOtherMethod { // "*": every method not listed, an explicit choice
			if err := checkMethod(m); err != "" {
				p.Errorf(cfg, field, "scopes: method %q %s", m, err)
			}
		}
		checkScopes(&p, cfg, field, c.Methods[m])
		total += len(c.Methods[m])
	}
	if total == 0 {
		p.Errorf(cfg, "", "scopes: needs at least one scope in all or methods")
	}
	return p.Err()
}

// provision builds the requirements of a validated c.
func (c *Config) provision() *compiled {
	names := slices.Sorted(maps.Keys(c.Methods))
	// An empty realm is the route's (New).
	p := &compiled{realm: c.Realm, anyOf: c.AnyOf, methods: make(map[string]*requirement, len(c.Methods)+1)}
	switch other, ok := c.Methods[AnyOtherMethod]; {
	case len(c.Methods) == 0:
		p.other = build(c.All, nil, c.AnyOf)
	case ok:
		p.other = build(c.All, other, c.AnyOf)
	}
	for _, m := range names {
		if m != AnyOtherMethod {
			p.methods[m] = build(c.All, c.Methods[m], c.AnyOf)
		}
	}
	if _, ok := p.methods["HEAD"]; !ok {
		// RFC 9110 §9.3.2: HEAD is GET without the content, so it reads
		// what GET reads.
		if get, ok := p.methods["GET"]; ok {
			p.methods["HEAD"] = get
		}
	}
	allow := make([]string, 0, len(p.methods))
	for m := range p.methods {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	p.allow = strings.Join(allow, ", ")
	return p
}

// build merges All and a method's list into one requirement.
func build(all, method []string, anyOf bool) *requirement {
	r := &requirement{}
	if anyOf {
		if len(all) > 0 {
			r.groups = append(r.groups, slices.Clone(all))
		}
		if len(method) > 0 {
			r.groups = append(r.groups, slices.Clone(method))
		}
		return r
	}
	seen := make(map[string]bool, len(all)+len(method))
	for _, list := range [][]string{all, method} {
		for _, s := range list {
			if seen[s] {
				continue // in All and the method's list: needed once
			}
			seen[s] = true
			r.groups = append(r.groups, []string{s})
		}
	}
	return r
}

// checkScopes records the problems of one list of scopes at field.
func checkScopes(p *config.Problems, cfg *config.Node, field string, list []string) {
	for i, s := range list {
		at := config.Index(field, i)
		switch {
		case s == "":
			p.Errorf(cfg, at, "scopes: empty scope")
		case !isScopeToken(s):
			p.Errorf(cfg, at, "scopes: %q is not a scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\')", s)
		case slices.Contains(list[:i], s):
			p.Errorf(cfg, at, "scopes: duplicate scope %q", s)
		}
	}
}

// isScopeToken reports whether s is an RFC 6749 §3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// checkMethod returns why m is not an upper-case RFC 9110 method token,
// or "" when it is one.
func checkMethod(m string) string {
	if m == "" {
		return "is empty"
	}
	lower := false
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return "is not an HTTP method token (RFC 9110 §9.1)"
		}
	}
	if lower {
		// Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET,
		// and would silently never match.
		return "must be upper case (methods are case-sensitive): " + strconv.Quote(strings.ToUpper(m))
	}
	return ""
}
