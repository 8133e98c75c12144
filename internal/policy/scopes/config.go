package scopes

import (
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

func decode(cfg *config.Node) (*compiled, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := checkScopes(cfg, "all", c.All); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(c.Methods))
	for m := range c.Methods {
		names = append(names, m)
	}
	// Sorted, so that of several bad entries the same one is reported on
	// every load.
	slices.Sort(names)
	total := len(c.All)
	for _, m := range names {
		field := "methods" + keyPath(m)
		if m == AnyOtherMethod {
			// Scopes for every method not listed: an explicit choice
			// to let them through.
		} else if err := checkMethod(m); err != "" {
			return nil, cfg.Errorf(field, "scopes: method %q %s", m, err)
		}
		if err := checkScopes(cfg, field, c.Methods[m]); err != nil {
			return nil, err
		}
		total += len(c.Methods[m])
	}
	if total == 0 {
		return nil, cfg.Errorf("", "scopes: needs at least one scope in all or methods")
	}

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
	return p, nil
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

// checkScopes validates one list of scopes at field.
func checkScopes(cfg *config.Node, field string, list []string) error {
	for i, s := range list {
		at := config.Index(field, i)
		if s == "" {
			return cfg.Errorf(at, "scopes: empty scope")
		}
		if !isScopeToken(s) {
			return cfg.Errorf(at, "scopes: %q is not a scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\')", s)
		}
		if slices.Contains(list[:i], s) {
			return cfg.Errorf(at, "scopes: duplicate scope %q", s)
		}
	}
	return nil
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

// keyPath is the path segment of mapping key k, the way config paths
// spell it: ".k" for plain keys, `["k"]` for the rest.
func keyPath(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0 {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}
