package router

import (
	"fmt"
	"strings"
)

// Param is one path template parameter of a match: Key is the parameter's
// name in the route's template and Value the request path segment it
// matched (never empty, never containing "/").
type Param struct{ Key, Value string }

// Route is one route to compile. Value is the caller's payload returned on
// a match. The zero Route is invalid: one of Path and PathPrefix is
// required.
type Route[T any] struct {
	// Name identifies the route in errors and in [Match.Name]; it may be
	// empty and need not be unique.
	Name string
	// Hosts are exact names ("api.example.com"), wildcards
	// ("*.example.com") or IP literals. Empty: any host.
	Hosts []string
	// Path is an exact path ("/health") or a template ("/product/{id}").
	// Exclusive with PathPrefix.
	Path string
	// PathPrefix matches this path and everything below it on a segment
	// boundary. Exclusive with Path.
	PathPrefix string
	// Methods are upper-case method names. Empty: the
	// [StandardMethods]. [AnyMethod] alone: any method token.
	Methods []string
	// Value is returned in [Match.Value] when the route is selected.
	Value T
}

// StandardMethods are the methods of a route that lists none: those of
// RFC 9110 §9.3 and RFC 5789 less CONNECT and TRACE, sorted. Do not
// modify.
var StandardMethods = []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}

// AnyMethod, as a route's only method, makes the route take any method
// token, CONNECT, TRACE and extension methods included.
const AnyMethod = "*"

// Result is the outcome of [Router.Match]. The zero value is NotFound.
type Result uint8

const (
	// NotFound: no route matches the host and path.
	NotFound Result = iota
	// Found: a route matches host, path and method.
	Found
	// MethodNotAllowed: the selected host table has the path, but no route
	// with that pattern takes the method; see [Match.Allow].
	MethodNotAllowed
)

// String returns "found", "not_found" or "method_not_allowed".
func (r Result) String() string {
	switch r {
	case Found:
		return "found"
	case NotFound:
		return "not_found"
	case MethodNotAllowed:
		return "method_not_allowed"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Match is the outcome of [Router.Match]. Value and Name are set only when
// Result is Found; Allow only when it is MethodNotAllowed.
type Match[T any] struct {
	// Value is the selected route's Value.
	Value T
	// Name is the selected route's Name.
	Name string
	// Result says whether a route was found.
	Result Result
	// Allow lists the methods the matched pattern takes, sorted and joined
	// with ", " ("GET, HEAD, POST"), for the Allow header of a 405. It is
	// computed at load time.
	Allow string
	// Rank orders the pattern that decided a Found or MethodNotAllowed
	// result against the pattern of another match of the same Router:
	// greater is more specific (a more specific host table first, then
	// exact over template over prefix, then more literal segments). Two
	// different patterns may have the same Rank. Zero for NotFound.
	Rank uint32
}

// Router selects routes. It is built by [New], immutable and safe for
// concurrent use. A nil *Router matches nothing.
type Router[T any] struct {
	routes []compiled[T]
	exact  map[string]*table // by normalized host
	wild   map[string]*table // by suffix: ".example.com" for "*.example.com"
	// wildMax is the longest key in wild, so Match skips suffixes that
	// cannot be in it.
	wildMax int
	any     *table
}

// compiled is what Match needs of a route.
type compiled[T any] struct {
	name   string
	value  T
	params []string // template parameter names, left to right
}

// Match finds the route for a request.
//
// host is the request's Host: it may carry a port (ignored), a trailing dot
// (ignored) and any case. path must already be cleaned by the caller (it
// starts with "/" and has no "." or ".." segments and no "//"); a path that
// does not start with "/" matches nothing. method is compared
// case-sensitively.
//
// The template parameters of a Found match are appended to params[:0] and
// returned as out, left to right; with other results out is params[:0].
// Match does not allocate when params has capacity for the parameters (and
// host is at most 256 bytes).
func (r *Router[T]) Match(host, method, path string, params []Param) (m Match[T], out []Param) {
	out = params[:0]
	if r == nil || len(path) == 0 || path[0] != '/' {
		return m, out
	}
	// The normalized host lives in a stack buffer, and the tables are
	// indexed with string(h), which the compiler does without a copy.
	var buf [256]byte
	h := appendHost(buf[:0], host)
	if len(r.exact) > 0 {
		if t := r.exact[string(h)]; t != nil {
			if g, p := t.lookup(path, out); g != nil {
				return r.resolve(g, method, p)
			}
		}
	}
	if len(r.wild) > 0 {
		// The leftmost dot gives the longest suffix. A wildcard needs at
		// least one byte of label before its suffix, hence i >= 1.
		for i := max(1, len(h)-r.wildMax); i < len(h); i++ {
			if h[i] != '.' {
				continue
			}
			if t := r.wild[string(h[i:])]; t != nil {
				if g, p := t.lookup(path, out); g != nil {
					return r.resolve(g, method, p)
				}
			}
		}
	}
	if r.any != nil {
		if g, p := r.any.lookup(path, out); g != nil {
			return r.resolve(g, method, p)
		}
	}
	return m, out
}

// Lookup returns what Match would return for the request, without the
// template parameters. It neither allocates nor retains path, so a
// caller may build path in a temporary buffer.
func (r *Router[T]) Lookup(host, method, path string) Match[T] {
	var m Match[T]
	if r == nil || len(path) == 0 || path[0] != '/' {
		return m
	}
	var buf [256]byte
	h := appendHost(buf[:0], host)
	g := (*group)(nil)
	if len(r.exact) > 0 {
		if t := r.exact[string(h)]; t != nil {
			g = t.find(path)
		}
	}
	if g == nil && len(r.wild) > 0 {
		for i := max(1, len(h)-r.wildMax); i < len(h) && g == nil; i++ {
			if h[i] != '.' {
				continue
			}
			if t := r.wild[string(h[i:])]; t != nil {
				g = t.find(path)
			}
		}
	}
	if g == nil && r.any != nil {
		g = r.any.find(path)
	}
	if g == nil {
		return m
	}
	m.Rank = g.rank
	i := g.route(method)
	if i < 0 {
		m.Result, m.Allow = MethodNotAllowed, g.allow
		return m
	}
	rt := &r.routes[i]
	m.Value, m.Name, m.Result = rt.value, rt.name, Found
	return m
}

// find is lookup without the parameters.
func (t *table) find(path string) *group {
	if g := t.exact[path]; g != nil {
		return g
	}
	if t.root != nil {
		if g := t.root.reach(path, 1); g != nil {
			return g
		}
	}
	if t.prefixes != nil {
		return t.prefixes.longest(path)
	}
	return nil
}

// reach is walk without the parameters: the same order, the same leaf.
func (n *node) reach(path string, i int) *group {
	seg, next, last := path[i:], 0, true
	if j := strings.IndexByte(seg, '/'); j >= 0 {
		seg, next, last = seg[:j], i+j+1, false
	}
	if c := n.static(seg); c != nil {
		if last {
			if c.leaf != nil {
				return c.leaf
			}
		} else if g := c.reach(path, next); g != nil {
			return g
		}
	}
	if c := n.param; c != nil && seg != "" {
		if last {
			if c.leaf != nil {
				return c.leaf
			}
		} else if g := c.reach(path, next); g != nil {
			return g
		}
	}
	return nil
}

// resolve picks the route of g for method. p holds the template parameter
// values found for g's pattern, without keys yet.
func (r *Router[T]) resolve(g *group, method string, p []Param) (m Match[T], out []Param) {
	m.Rank = g.rank
	i := g.route(method)
	if i < 0 {
		m.Result = MethodNotAllowed
		m.Allow = g.allow
		return m, p[:0]
	}
	rt := &r.routes[i]
	// Templates in one group have the same shape, so len(p) ==
	// len(rt.params); the names are the selected route's own.
	for k, name := range rt.params {
		p[k].Key = name
	}
	m.Value, m.Name, m.Result = rt.value, rt.name, Found
	return m, p
}

// table holds the routes of one host key.
type table struct {
	exact    map[string]*group // by exact path
	root     *node             // template trie; nil without templates
	prefixes *node             // prefix trie; nil without prefixes
}

// lookup returns the group of the most specific pattern matching path, with
// the template parameter values (if any) appended to p, or nil and p
// unchanged.
func (t *table) lookup(path string, p []Param) (*group, []Param) {
	if g := t.exact[path]; g != nil {
		return g, p
	}
	if t.root != nil {
		if g, q := t.root.walk(path, 1, p); g != nil {
			return g, q
		}
	}
	if t.prefixes != nil {
		return t.prefixes.longest(path), p
	}
	return nil, p
}

// node is a node of a segment trie: the root stands for the leading "/"
// and each edge for one segment. A table has two tries: one of templates,
// which uses param and leaf, and one of prefixes, which uses only literal
// edges, open and below.
type node struct {
	// statics are the literal children; staticMap replaces the linear scan
	// when there are many.
	statics   []edge
	staticMap map[string]*node
	param     *node  // the parameter child, whatever its name
	leaf      *group // templates that end here
	// open is the prefix without a trailing slash that ends here ("/api"),
	// which matches whether or not the path goes on; below is the prefix
	// with one ("/api/", or "/" at the root), which matches only if it
	// does. Where both match, below is the longer.
	open, below *group
}

type edge struct {
	label string
	node  *node
}

// manyStatics is the fan-out from which a map beats a linear scan of
// short strings.
const manyStatics = 8

func (n *node) static(seg string) *node {
	if n.staticMap != nil {
		return n.staticMap[seg]
	}
	for i := range n.statics {
		if n.statics[i].label == seg {
			return n.statics[i].node
		}
	}
	return nil
}

// walk matches path[i:], which starts a segment, below n: the literal child
// first, then the parameter child, backtracking out of a branch that does
// not reach a leaf. That order makes the first leaf found the one of
// highest precedence. Each trie node is visited at most once per walk (its
// depth fixes the path segment it is compared with), so the cost is bounded
// by the trie, not by the path, and recursion is bounded by the depth of
// the longest template.
func (n *node) walk(path string, i int, p []Param) (*group, []Param) {
	seg, next, last := path[i:], 0, true
	if j := strings.IndexByte(seg, '/'); j >= 0 {
		seg, next, last = seg[:j], i+j+1, false
	}
	if c := n.static(seg); c != nil {
		if last {
			if c.leaf != nil {
				return c.leaf, p
			}
		} else if g, q := c.walk(path, next, p); g != nil {
			return g, q
		}
	}
	if c := n.param; c != nil && seg != "" {
		withSeg := append(p, Param{Value: seg})
		if last {
			if c.leaf != nil {
				return c.leaf, withSeg
			}
		} else if g, q := c.walk(path, next, withSeg); g != nil {
			return g, q
		}
	}
	return nil, p
}

// longest returns the group of the longest prefix matching path, walking
// literal segments from the root n and keeping the deepest match.
func (n *node) longest(path string) *group {
	best := n.below // "/" matches every path.
	for i := 1; ; {
		seg, next, last := path[i:], 0, true
		if j := strings.IndexByte(seg, '/'); j >= 0 {
			seg, next, last = seg[:j], i+j+1, false
		}
		c := n.static(seg)
		if c == nil {
			return best
		}
		if c.open != nil {
			best = c.open
		}
		if last {
			return best
		}
		if c.below != nil {
			best = c.below
		}
		n, i = c, next
	}
}

// group is the routes of one host table that share one pattern; the
// method selects among them.
type group struct {
	members []int // route indexes, in input order
	// anyMethod is the route without methods, or -1. A group with such a
	// route has no other member (it would be ambiguous).
	anyMethod int
	methods   []methodRoute // explicit methods plus the implicit HEAD
	allow     string
	rank      uint32 // Match.Rank
}

type methodRoute struct {
	method string
	route  int
}

// route returns the index of the route taking method, or -1.
func (g *group) route(method string) int {
	if g.anyMethod >= 0 {
		return g.anyMethod
	}
	for i := range g.methods {
		if g.methods[i].method == method {
			return g.methods[i].route
		}
	}
	return -1
}
