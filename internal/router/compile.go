package router

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AmbiguousError reports two routes that could take the same request with
// equal precedence: the same host table, the same pattern and overlapping
// methods. A is the earlier route in the input, B the later one, which is
// the one New was adding when it found the conflict.
type AmbiguousError struct {
	// A and B are indexes in the routes given to New, A < B.
	A, B int
	// NameA and NameB are the routes' names.
	NameA, NameB string
	// Reason says what the routes share: the host, the pattern and the
	// methods.
	Reason string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("router: route %d (%q) is ambiguous with route %d (%q): %s", e.B, e.NameB, e.A, e.NameA, e.Reason)
}

// RouteError reports an invalid route.
type RouteError struct {
	// Index is the route's index in the routes given to New.
	Index int
	// Name is the route's name.
	Name string
	// Field is the route field at fault: "path", "path_prefix", "hosts" or
	// "methods".
	Field string
	// Msg says what is wrong, in lower case.
	Msg string
}

func (e *RouteError) Error() string {
	return fmt.Sprintf("router: route %d (%q): %s: %s", e.Index, e.Name, e.Field, e.Msg)
}

// kind is the class of a pattern, in precedence order within a table.
type kind uint8

const (
	kindExact kind = iota
	kindTemplate
	kindPrefix
)

func (k kind) String() string {
	switch k {
	case kindExact:
		return "path"
	case kindTemplate:
		return "path template"
	}
	return "path prefix"
}

// segment is one parsed template segment.
type segment struct {
	lit   string
	param bool
}

// builder holds what New needs while compiling and not afterwards.
type builder[T any] struct {
	r       *Router[T]
	in      []Route[T]
	methods [][]string // per route, validated; nil means any method ("*")
	groups  []*group
	// allows interns the groups' Allow values: many routes take the same
	// methods.
	allows map[string]string
}

// New compiles routes into a Router. It returns the first problem it finds,
// in input order, as a [*RouteError] (an invalid route) or an
// [*AmbiguousError] (two routes with equal precedence). No routes give a
// Router that finds nothing. Route values are copied; routes may be reused
// after New returns.
func New[T any](routes []Route[T]) (*Router[T], error) {
	b := &builder[T]{
		r:       &Router[T]{routes: make([]compiled[T], len(routes))},
		in:      routes,
		methods: make([][]string, len(routes)),
	}
	for i := range routes {
		if err := b.add(i); err != nil {
			return nil, err
		}
	}
	for _, g := range b.groups {
		b.finish(g)
	}
	return b.r, nil
}

func (b *builder[T]) add(i int) error {
	rt := &b.in[i]
	fail := func(field, format string, args ...any) error {
		return &RouteError{Index: i, Name: rt.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}

	var (
		k       kind
		pattern string
		segs    []segment
		names   []string
	)
	switch {
	case rt.Path != "" && rt.PathPrefix != "":
		return fail("path_prefix", "path and path_prefix are exclusive")
	case rt.Path != "":
		var msg string
		segs, names, msg = parseTemplate(rt.Path)
		if msg != "" {
			return fail("path", "%q: %s", rt.Path, msg)
		}
		k, pattern = kindExact, rt.Path
		if len(names) > 0 {
			k = kindTemplate
		}
	case rt.PathPrefix != "":
		if msg := checkPath(rt.PathPrefix); msg != "" {
			return fail("path_prefix", "%q: %s", rt.PathPrefix, msg)
		}
		if strings.ContainsAny(rt.PathPrefix, "{}") {
			return fail("path_prefix", "%q: a prefix is literal and cannot hold \"{\" or \"}\"", rt.PathPrefix)
		}
		k, pattern = kindPrefix, rt.PathPrefix
		for s := range strings.SplitSeq(pattern[1:], "/") {
			segs = append(segs, segment{lit: s})
		}
	default:
		return fail("path", "one of path and path_prefix is required")
	}

	var methods []string
	switch {
	case len(rt.Methods) == 0:
		// Fail closed: a route that names no method takes the standard
		// ones, not TRACE, CONNECT or whatever token a client invents.
		methods = slices.Clone(StandardMethods)
	case slices.Contains(rt.Methods, AnyMethod):
		if len(rt.Methods) > 1 {
			return fail("methods", "%q (any method) must be the only entry", AnyMethod)
		}
		// methods stays nil: any method token.
	}
	for _, m := range rt.Methods {
		if m == AnyMethod {
			continue
		}
		if msg := checkMethod(m); msg != "" {
			return fail("methods", "%q: %s", m, msg)
		}
		if slices.Contains(methods, m) {
			return fail("methods", "%q is listed twice", m)
		}
		methods = append(methods, m)
	}
	b.methods[i] = methods

	hosts := make([]string, 0, len(rt.Hosts))
	for _, h := range rt.Hosts {
		key, msg := normalizeHost(h)
		if msg != "" {
			return fail("hosts", "%q: %s", h, msg)
		}
		if slices.Contains(hosts, key) {
			return fail("hosts", "%q is listed twice", h)
		}
		hosts = append(hosts, key)
	}

	b.r.routes[i] = compiled[T]{name: rt.Name, value: rt.Value, params: names}

	if len(hosts) == 0 {
		if b.r.any == nil {
			b.r.any = &table{}
		}
		return b.insert(b.r.any, "any host", rankOf(1, k, segs), i, k, pattern, segs)
	}
	for _, key := range hosts {
		var t *table
		var where string
		tableRank := uint32(3)
		if suffix, ok := strings.CutPrefix(key, "*"); ok {
			tableRank = 2
			if b.r.wild == nil {
				b.r.wild = make(map[string]*table)
			}
			if t = b.r.wild[suffix]; t == nil {
				t = &table{}
				b.r.wild[suffix] = t
				b.r.wildMax = max(b.r.wildMax, len(suffix))
			}
			where = fmt.Sprintf("host %q", key)
		} else {
			if b.r.exact == nil {
				b.r.exact = make(map[string]*table)
			}
			if t = b.r.exact[key]; t == nil {
				t = &table{}
				b.r.exact[key] = t
			}
			where = fmt.Sprintf("host %q", key)
		}
		if err := b.insert(t, where, rankOf(tableRank, k, segs), i, k, pattern, segs); err != nil {
			return err
		}
	}
	return nil
}

// insert adds route i to the group of its pattern in t, failing if the
// group already has a route whose methods overlap.
func (b *builder[T]) insert(t *table, where string, rank uint32, i int, k kind, pattern string, segs []segment) error {
	var g *group
	defer func() {
		if g != nil {
			g.rank = rank
		}
	}()
	switch k {
	case kindExact:
		if t.exact == nil {
			t.exact = make(map[string]*group)
		}
		if g = t.exact[pattern]; g == nil {
			g = b.group()
			t.exact[pattern] = g
		}
	case kindPrefix:
		if t.prefixes == nil {
			t.prefixes = &node{}
		}
		// segs of "/api/" end with an empty segment, which stands for
		// "below"; "/" is the root's below.
		var slot **group
		if last := len(segs) - 1; segs[last].lit == "" {
			slot = &t.prefixes.insert(segs[:last]).below
		} else {
			slot = &t.prefixes.insert(segs).open
		}
		if g = *slot; g == nil {
			g = b.group()
			*slot = g
		}
	case kindTemplate:
		if t.root == nil {
			t.root = &node{}
		}
		n := t.root.insert(segs)
		if n.leaf == nil {
			n.leaf = b.group()
		}
		g = n.leaf
	}
	for _, j := range g.members {
		if reason := b.overlap(j, i); reason != "" {
			same := fmt.Sprintf("%s %q", k, pattern)
			if other := b.in[j].Path; k == kindTemplate && other != pattern {
				same = fmt.Sprintf("%s (%q and %q differ only in parameter names)", k, pattern, other)
			}
			return &AmbiguousError{
				A: j, B: i,
				NameA: b.in[j].Name, NameB: b.in[i].Name,
				Reason: fmt.Sprintf("same %s on %s, %s", same, where, reason),
			}
		}
	}
	g.members = append(g.members, i)
	return nil
}

// rankOf is the Rank of a pattern of kind k and segments segs in a host
// table of rank tableRank (3 exact, 2 wildcard, 1 any host): the table
// first, then exact over template over prefix, then, among templates, the
// number of literal segments and, among prefixes, the number of segments.
func rankOf(tableRank uint32, k kind, segs []segment) uint32 {
	detail := uint32(0)
	for _, s := range segs {
		if !s.param && s.lit != "" {
			detail++
		}
	}
	detail = min(detail, 0xffff)
	return tableRank<<24 | uint32(kindPrefix-k+1)<<16 | detail
}

// group returns a new, empty group, registered for finish.
func (b *builder[T]) group() *group {
	g := &group{anyMethod: -1}
	b.groups = append(b.groups, g)
	return g
}

// overlap says how the methods of routes j and i overlap, or "" if they do
// not.
func (b *builder[T]) overlap(j, i int) string {
	mj, mi := b.methods[j], b.methods[i]
	switch {
	case mj == nil && mi == nil:
		return `both take any method ("*")`
	case mj == nil:
		return fmt.Sprintf(`route %d takes any method ("*")`, j)
	case mi == nil:
		return fmt.Sprintf(`route %d takes any method ("*")`, i)
	}
	for _, m := range mi {
		if slices.Contains(mj, m) {
			switch sj, si := len(b.in[j].Methods) == 0, len(b.in[i].Methods) == 0; {
			case sj && si:
				return "both take the standard methods (no methods listed)"
			case sj:
				return fmt.Sprintf("route %d takes the standard methods (no methods listed), %s included", j, m)
			case si:
				return fmt.Sprintf("route %d takes the standard methods (no methods listed), %s included", i, m)
			}
			return fmt.Sprintf("both take %s", m)
		}
	}
	return ""
}

// finish computes the method table and Allow value of a group.
func (b *builder[T]) finish(g *group) {
	if len(g.members) == 1 && b.methods[g.members[0]] == nil {
		g.anyMethod = g.members[0]
		return
	}
	get, head, n := -1, false, 1 // room for an implicit HEAD
	for _, i := range g.members {
		n += len(b.methods[i])
	}
	g.methods = make([]methodRoute, 0, n)
	for _, i := range g.members {
		for _, m := range b.methods[i] {
			g.methods = append(g.methods, methodRoute{method: m, route: i})
			switch m {
			case "GET":
				get = i
			case "HEAD":
				head = true
			}
		}
	}
	if get >= 0 && !head {
		g.methods = append(g.methods, methodRoute{method: "HEAD", route: get})
	}
	// Sorted for the Allow value; Match's linear scan does not care.
	slices.SortFunc(g.methods, func(a, b methodRoute) int { return strings.Compare(a.method, b.method) })
	names := make([]string, len(g.methods))
	for k, m := range g.methods {
		names[k] = m.method
	}
	allow := strings.Join(names, ", ")
	if a, ok := b.allows[allow]; ok {
		allow = a
	} else {
		if b.allows == nil {
			b.allows = make(map[string]string)
		}
		b.allows[allow] = allow
	}
	g.allow = allow
}

// insert returns the trie node at the end of segs, creating nodes as
// needed. Parameters share one child whatever their name.
func (n *node) insert(segs []segment) *node {
	for _, s := range segs {
		if s.param {
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		c := n.static(s.lit)
		if c == nil {
			c = &node{}
			n.statics = append(n.statics, edge{label: s.lit, node: c})
			if n.staticMap != nil {
				n.staticMap[s.lit] = c
			} else if len(n.statics) > manyStatics {
				n.staticMap = make(map[string]*node, len(n.statics))
				for _, e := range n.statics {
					n.staticMap[e.label] = e.node
				}
			}
		}
		n = c
	}
	return n
}

// checkPath validates what exact paths, templates and prefixes share and
// returns "" or what is wrong.
func checkPath(p string) string {
	if p[0] != '/' {
		return `must start with "/"`
	}
	if !utf8.ValidString(p) {
		return "is not valid UTF-8"
	}
	for _, r := range p {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return "contains whitespace or a control character"
		case r == '?' || r == '#':
			return `contains "?" or "#" (a path has no query or fragment)`
		}
	}
	for rest := p[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "" && more:
			return `contains an empty segment ("//")`
		case seg == "." || seg == "..":
			return `contains a "." or ".." segment`
		}
		if !more {
			return ""
		}
		rest = tail
	}
}

// parseTemplate validates an exact path or template and splits it into
// segments. names is nil for an exact path.
func parseTemplate(p string) (segs []segment, names []string, msg string) {
	if msg := checkPath(p); msg != "" {
		return nil, nil, msg
	}
	if !strings.ContainsAny(p, "{}") {
		return nil, nil, ""
	}
	for _, s := range strings.Split(p[1:], "/") {
		name, ok := strings.CutPrefix(s, "{")
		if ok {
			name, ok = strings.CutSuffix(name, "}")
		}
		if !ok || strings.ContainsAny(name, "{}") {
			if strings.ContainsAny(s, "{}") {
				return nil, nil, fmt.Sprintf(`segment %q: "{" and "}" may only enclose a whole segment`, s)
			}
			segs = append(segs, segment{lit: s})
			continue
		}
		switch {
		case name == "":
			return nil, nil, "empty parameter name"
		case !validName(name):
			return nil, nil, fmt.Sprintf("parameter name %q is not valid (want [A-Za-z_][A-Za-z0-9_]*)", name)
		case slices.Contains(names, name):
			return nil, nil, fmt.Sprintf("parameter name %q is used twice", name)
		}
		names = append(names, name)
		segs = append(segs, segment{param: true})
	}
	return segs, names, ""
}

func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// checkMethod returns "" for an upper-case method token, or what is wrong.
func checkMethod(m string) string {
	if m == "" {
		return "empty method"
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case 'a' <= c && c <= 'z':
			return "methods must be upper case"
		case !isTchar(c):
			return "not a valid method token"
		}
	}
	return ""
}

// isTchar reports whether c may appear in an HTTP token (RFC 9110, 5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// normalizeHost validates a configured host and returns its table key: the
// lower-case name without a trailing dot, "*.suffix" for a wildcard, or the
// canonical text of an IP literal (without brackets).
func normalizeHost(h string) (key, msg string) {
	if h == "" {
		return "", "empty host"
	}
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		if !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return "", "not a valid IPv6 literal (a port is not allowed)"
		}
		return a.String(), ""
	}
	if strings.Contains(h, ":") {
		a, err := netip.ParseAddr(h)
		if err != nil || a.Zone() != "" {
			return "", "a host must not carry a port"
		}
		return a.String(), ""
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), ""
	}
	name := strings.TrimSuffix(strings.ToLower(h), ".")
	wild := false
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name, wild = rest, true
	}
	if name == "" || name == "*" {
		return "", "use an empty hosts list to match any host"
	}
	if len(name) > 253 {
		return "", "longer than 253 bytes"
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return "", "empty label"
		case len(label) > 63:
			return "", "label longer than 63 bytes"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case c == '*':
				return "", `"*" is only allowed as the whole first label ("*.example.com")`
			case c >= utf8.RuneSelf:
				return "", `not ASCII (use the "xn--" form)`
			default:
				return "", fmt.Sprintf("invalid character %q", c)
			}
		}
	}
	if wild {
		return "*." + name, ""
	}
	return name, ""
}

// appendHost appends the table key of a request's Host to dst: without the
// port, brackets and trailing dot, lower-cased, IPv6 literals in canonical
// form. It does not validate; a malformed host simply matches no exact or
// wildcard table.
func appendHost(dst []byte, host string) []byte {
	if inner, ok := strings.CutPrefix(host, "["); ok {
		if end := strings.IndexByte(inner, ']'); end >= 0 {
			if a, err := netip.ParseAddr(inner[:end]); err == nil {
				return a.AppendTo(dst)
			}
			host = inner[:end]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if strings.IndexByte(host, ':') == i {
			host = host[:i]
		} else if a, err := netip.ParseAddr(host); err == nil {
			// A bare IPv6 address is not a valid Host, but it is
			// unambiguous.
			return a.AppendTo(dst)
		}
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
