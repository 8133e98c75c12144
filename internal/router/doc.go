// Package router picks the route for a request by host, path and method.
//
// A [Router] is compiled once per configuration load by [New] from a list of
// [Route] values and is immutable afterwards, so one Router serves any
// number of goroutines without locking. Every problem with the route list
// (an invalid template, host or method, or two routes that could take the
// same request with equal precedence) is reported by New as a
// [*RouteError] or an [*AmbiguousError]; nothing is decided or rejected at
// request time except "no route" and "method not allowed". [Router.Match]
// does not allocate when the caller passes a params slice with enough
// capacity.
//
// # Hosts
//
// A route's Hosts are exact names ("api.example.com"), wildcards
// ("*.example.com") or IP literals ("127.0.0.1", "::1" or "[::1]"); an empty
// list means any host. Names are compared case-insensitively (they are
// lower-cased at load time) and a single trailing dot is ignored, both in
// the configuration and in the request. A configured host must not carry a
// port; names are ASCII (use the "xn--" form for internationalized names),
// made of labels of letters, digits, '-' and '_', at most 253 bytes. The
// request's Host may carry a port, which is ignored, and may be an IPv6
// literal in brackets ("[::1]:8080"), which is compared in its canonical
// text form (so "[0:0::1]" matches "::1").
//
// A wildcard "*.example.com" matches any name that ends with ".example.com"
// and has at least one more label: "a.example.com" and "a.b.example.com",
// but not "example.com" (list both to take both).
//
// Routes are grouped into host tables: one table per exact host, one per
// wildcard and one for routes without hosts (the any-host table). A route
// with several hosts is in several tables. For a request the tables are
// tried in this order, and the first table with a route whose path matches
// decides the request:
//
//  1. the table of the exact host;
//  2. the wildcard tables that match, longest suffix first
//     ("*.b.example.com" before "*.example.com");
//  3. the any-host table.
//
// If the deciding table has the path but no route for the method, the
// result is [MethodNotAllowed]: a less specific host table is not consulted
// on a method mismatch. If no table has the path, the result is [NotFound].
//
// # Paths
//
// A route has exactly one of Path and PathPrefix. The request path is
// compared byte for byte (it is the decoded path, cleaned by the caller: no
// "." or ".." segments, no "//"); paths are case-sensitive.
//
// Path is either an exact path ("/health") or a template whose segments may
// be parameters: "/product/{id}". A parameter is a whole segment "{name}"
// where name matches [A-Za-z_][A-Za-z0-9_]* and is unique within the
// template; it matches exactly one non-empty segment (never a "/"). A
// trailing slash is significant: "/product" and "/product/" are different
// paths, and "/product/{id}" does not match "/product/7/".
//
// PathPrefix matches on a segment boundary. "/api" matches "/api", "/api/"
// and "/api/x", but not "/apix". A prefix ending with "/" matches only
// below it: "/api/" matches "/api/" and "/api/x" but not "/api". The prefix
// "/" matches every path. A prefix is literal: it cannot hold parameters.
//
// Rejected at load time (as a [*RouteError]): a path or prefix that is
// empty or does not start with "/", an empty segment ("//"), a "." or ".."
// segment, whitespace or control characters, invalid UTF-8, '?' or '#';
// in templates, '{' or '}' anywhere but around a whole-segment parameter,
// an empty or invalid parameter name, or a repeated one; any brace in a
// prefix.
//
// # Precedence within a host table
//
// The path alone selects the most specific pattern, in this order:
//
//  1. an exact path equal to the request path;
//  2. a template: templates are ranked segment by segment from the left,
//     and at the first position where two templates differ, a literal
//     segment beats a parameter. So "/product/new" beats "/product/{id}",
//     and for "/a/b", "/a/{x}" beats "/{y}/b". The search backtracks: with
//     "/a/b/d" and "/a/{x}/c", the path "/a/b/c" first tries the literal
//     "b", finds no "c" under it, and then takes "/a/{x}/c" with x=b;
//  3. a prefix: the longest matching prefix wins.
//
// Only then is the method considered, among the routes that share that
// pattern. A request whose path matches a more specific pattern with the
// wrong method gets [MethodNotAllowed] even if a less specific pattern
// (a template or a prefix) would take the method: "GET /admin/users" and
// the prefix "/admin" make "POST /admin/users" a 405, not a match of the
// prefix. This keeps a specific route from being bypassed by changing the
// method.
//
// # Methods
//
// Methods are case-sensitive tokens (RFC 9110 §9.1: "delete" is not
// DELETE) and must be written in upper case ("GET"). An empty list means
// the [StandardMethods] (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS), so
// that TRACE, CONNECT, "get" or an invented token reach no route that did
// not name them; the single entry [AnyMethod] ("*") takes every method
// token. Routes with the same host
// table and the same pattern but disjoint methods combine: GET on one
// route and POST on another. A route that takes GET also takes HEAD, as
// net/http's ServeMux does, unless another route with the same pattern
// lists HEAD explicitly. For [MethodNotAllowed], [Match.Allow] holds the
// methods of all routes with the matched pattern (plus HEAD where GET is
// allowed), sorted and joined with ", ", ready for the Allow header.
//
// # Ambiguity
//
// Two routes are ambiguous, and New fails with an [*AmbiguousError], when
// they are in the same host table (the same exact host, the same wildcard,
// or both without hosts), have the same pattern (the same exact path, the
// same prefix, or templates that are equal once parameter names are
// ignored: "/p/{id}" and "/p/{pid}") and their method sets overlap (an
// empty set is the standard methods; "*" overlaps every set). Different host tables never conflict:
// "a.example.com", "*.example.com" and any-host are ordered by the host
// rule above. Different patterns never conflict: the precedence rules
// order any two of them. The implicit HEAD of a GET route does not cause
// ambiguity; an explicit HEAD route takes precedence over it.
package router
