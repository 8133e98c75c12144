package router

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// This file checks Router against a brute-force reference that applies the
// documented rules directly to the route list: no tables, no trie.

// refResult is what the reference and the router are compared on.
type refResult struct {
	Result Result
	Route  int // index of the route, -1 unless Found
	Params []Param
	Allow  string
}

// refHostKeys returns a route's host keys as the reference sees them:
// lower-case without a trailing dot, or "" for any host.
func refHostKeys(rt Route[int]) []string {
	if len(rt.Hosts) == 0 {
		return []string{""}
	}
	var keys []string
	for _, h := range rt.Hosts {
		keys = append(keys, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	return keys
}

// refHostRank says whether the table key matches the request host and how
// specific it is (lower is more specific).
func refHostRank(key, host string) (rank int, ok bool) {
	switch {
	case key == "":
		return 1 << 20, true
	case strings.HasPrefix(key, "*."):
		suffix := key[1:]
		if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			return 1000 - len(suffix), true
		}
		return 0, false
	}
	return 0, key == host
}

func refKind(rt Route[int]) kind {
	switch {
	case rt.PathPrefix != "":
		return kindPrefix
	case strings.Contains(rt.Path, "{"):
		return kindTemplate
	}
	return kindExact
}

// refPattern is a route's pattern with parameter names dropped.
func refPattern(rt Route[int]) string {
	if rt.PathPrefix != "" {
		return "prefix " + rt.PathPrefix
	}
	segs := strings.Split(rt.Path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "{}"
		}
	}
	return "path " + strings.Join(segs, "/")
}

// refPathMatch reports whether the route's path matches and returns the
// template parameters.
func refPathMatch(rt Route[int], path string) (bool, []Param) {
	if pre := rt.PathPrefix; pre != "" {
		return path == pre ||
			strings.HasSuffix(pre, "/") && strings.HasPrefix(path, pre) ||
			strings.HasPrefix(path, pre+"/"), nil
	}
	if refKind(rt) == kindExact {
		return path == rt.Path, nil
	}
	ps, qs := strings.Split(rt.Path, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return false, nil
	}
	var params []Param
	for i := range ps {
		if name, ok := strings.CutPrefix(ps[i], "{"); ok {
			if qs[i] == "" {
				return false, nil
			}
			params = append(params, Param{Key: strings.TrimSuffix(name, "}"), Value: qs[i]})
		} else if ps[i] != qs[i] {
			return false, nil
		}
	}
	return true, params
}

// refBetter reports whether route a's pattern has precedence over b's for
// a path both match.
func refBetter(a, b Route[int]) bool {
	ka, kb := refKind(a), refKind(b)
	if ka != kb {
		return ka < kb
	}
	switch ka {
	case kindPrefix:
		return len(a.PathPrefix) > len(b.PathPrefix)
	case kindTemplate:
		sa, sb := strings.Split(a.Path, "/"), strings.Split(b.Path, "/")
		for i := range sa {
			pa, pb := strings.HasPrefix(sa[i], "{"), strings.HasPrefix(sb[i], "{")
			if pa != pb {
				return !pa
			}
		}
	}
	return false
}

func refMatch(routes []Route[int], host, method, path string) refResult {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")

	// The host tables that match, most specific first.
	type tbl struct {
		key  string
		rank int
	}
	var tables []tbl
	for _, rt := range routes {
		for _, k := range refHostKeys(rt) {
			if rank, ok := refHostRank(k, host); ok && !slices.Contains(tables, tbl{k, rank}) {
				tables = append(tables, tbl{k, rank})
			}
		}
	}
	slices.SortFunc(tables, func(a, b tbl) int { return a.rank - b.rank })

	for _, t := range tables {
		best := -1
		for i, rt := range routes {
			if !slices.Contains(refHostKeys(rt), t.key) {
				continue
			}
			if ok, _ := refPathMatch(rt, path); ok && (best < 0 || refBetter(rt, routes[best])) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		// The group: routes of this table with the best pattern.
		var group []int
		for i, rt := range routes {
			if slices.Contains(refHostKeys(rt), t.key) && refPattern(rt) == refPattern(routes[best]) {
				group = append(group, i)
			}
		}
		pick := -1
		explicitHead := false
		for _, i := range group {
			ms := refMethods(routes[i])
			if ms == nil || slices.Contains(ms, method) {
				pick = i
			}
			explicitHead = explicitHead || slices.Contains(ms, "HEAD")
		}
		if pick < 0 && method == "HEAD" && !explicitHead {
			for _, i := range group {
				if slices.Contains(refMethods(routes[i]), "GET") {
					pick = i
				}
			}
		}
		if pick < 0 {
			var allow []string
			for _, i := range group {
				for _, m := range refMethods(routes[i]) {
					if !slices.Contains(allow, m) {
						allow = append(allow, m)
					}
				}
			}
			if slices.Contains(allow, "GET") && !slices.Contains(allow, "HEAD") {
				allow = append(allow, "HEAD")
			}
			slices.Sort(allow)
			return refResult{Result: MethodNotAllowed, Route: -1, Allow: strings.Join(allow, ", ")}
		}
		_, params := refPathMatch(routes[pick], path)
		return refResult{Result: Found, Route: pick, Params: params}
	}
	return refResult{Result: NotFound, Route: -1}
}

// refMethods is the method set of a route: nil for any method ("*"), the
// standard methods spelled out when none are listed.
func refMethods(rt Route[int]) []string {
	switch {
	case len(rt.Methods) == 0:
		return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	case len(rt.Methods) == 1 && rt.Methods[0] == "*":
		return nil
	}
	return rt.Methods
}

// refConflicts returns the pairs (a, b), a < b, of ambiguous routes.
func refConflicts(routes []Route[int]) [][2]int {
	var pairs [][2]int
	for b := range routes {
		for a := range b {
			ra, rb := routes[a], routes[b]
			shareHost := slices.ContainsFunc(refHostKeys(ra), func(k string) bool { return slices.Contains(refHostKeys(rb), k) })
			if !shareHost || refPattern(ra) != refPattern(rb) {
				continue
			}
			ma, mb := refMethods(ra), refMethods(rb)
			overlap := ma == nil || mb == nil ||
				slices.ContainsFunc(ma, func(m string) bool { return slices.Contains(mb, m) })
			if overlap {
				pairs = append(pairs, [2]int{a, b})
			}
		}
	}
	return pairs
}

// randRoute returns a valid random route over a small alphabet, so that
// routes collide and overlap often.
func randRoute(rng *rand.Rand) Route[int] {
	hostSets := [][]string{nil, nil, nil, {"a.test"}, {"A.test."}, {"*.test"}, {"*.b.test"}, {"x.b.test"}, {"a.test", "*.b.test"}}
	var rt Route[int]
	rt.Hosts = hostSets[rng.IntN(len(hostSets))]
	for _, m := range []string{"GET", "HEAD", "POST", "PROPFIND"} {
		if rng.IntN(3) == 0 {
			rt.Methods = append(rt.Methods, m)
		}
	}
	if len(rt.Methods) == 0 && rng.IntN(3) == 0 {
		rt.Methods = []string{"*"}
	}
	var b strings.Builder
	prefix := rng.IntN(3) == 0
	for i := range rng.IntN(4) {
		b.WriteByte('/')
		if !prefix && rng.IntN(3) == 0 {
			// Varying names, unique within the template.
			fmt.Fprintf(&b, "{%c%d}", 'p'+rune(rng.IntN(3)), i)
		} else {
			b.WriteString([]string{"a", "b", "c"}[rng.IntN(3)])
		}
	}
	if b.Len() == 0 || rng.IntN(4) == 0 {
		b.WriteByte('/')
	}
	if prefix {
		rt.PathPrefix = b.String()
	} else {
		rt.Path = b.String()
	}
	return rt
}

func randRequest(rng *rand.Rand) (host, method, path string) {
	hosts := []string{"a.test", "A.TEST:8080", "a.test.", "x.b.test", "y.x.b.test", "b.test", "q.test", "other", ""}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PROPFIND", "TRACE", "get", "Post"}
	var b strings.Builder
	for range rng.IntN(5) {
		b.WriteByte('/')
		// Mostly the routes' alphabet; sometimes an empty segment, which
		// a cleaned path has not but Match must handle all the same.
		b.WriteString([]string{"a", "b", "c", "d", "a", "b", ""}[rng.IntN(7)])
	}
	if b.Len() == 0 || rng.IntN(4) == 0 {
		b.WriteByte('/')
	}
	return hosts[rng.IntN(len(hosts))], methods[rng.IntN(len(methods))], b.String()
}

func TestMatchAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var conflicts, results [3]int
	for set := range 300 {
		// Grow a route set one random route at a time; New must fail
		// exactly when the reference sees a conflict, and the route is
		// then dropped.
		var routes []Route[int]
		for len(routes) < 4+set%20 {
			rt := randRoute(rng)
			rt.Name = fmt.Sprint(len(routes))
			rt.Value = len(routes)
			cand := append(slices.Clone(routes), rt)
			_, err := New(cand)
			want := refConflicts(cand)
			if len(want) == 0 {
				if err != nil {
					t.Fatalf("routes %+v: got %v, want no error", cand, err)
				}
				routes = cand
				continue
			}
			var ae *AmbiguousError
			if !errors.As(err, &ae) {
				t.Fatalf("routes %+v: got %v, want an ambiguity among %v", cand, err, want)
			}
			if !slices.Contains(want, [2]int{ae.A, ae.B}) {
				t.Fatalf("routes %+v: got ambiguity (%d, %d), want one of %v", cand, ae.A, ae.B, want)
			}
			conflicts[refKind(rt)]++
		}
		r, err := New(routes)
		if err != nil {
			t.Fatal(err)
		}
		params := make([]Param, 0, 4)
		for range 300 {
			host, method, path := randRequest(rng)
			m, p := r.Match(host, method, path, params)
			got := refResult{Result: m.Result, Route: -1, Params: p, Allow: m.Allow}
			if m.Result == Found {
				got.Route = m.Value
			}
			if len(got.Params) == 0 {
				got.Params = nil
			}
			want := refMatch(routes, host, method, path)
			if diff := cmp.Diff(want, got); diff != "" {
				var list strings.Builder
				for i, rt := range routes {
					fmt.Fprintf(&list, "\n  %d: hosts=%q path=%q prefix=%q methods=%q", i, rt.Hosts, rt.Path, rt.PathPrefix, rt.Methods)
				}
				t.Fatalf("Match(%q, %q, %q) (-want +got):\n%s\nroutes:%s", host, method, path, diff, list.String())
			}
			results[m.Result]++
		}
	}
	// Guard the generator: a test that only ever sees NotFound or never
	// meets a conflict proves nothing.
	t.Logf("results found=%d not_found=%d 405=%d; conflicts exact=%d template=%d prefix=%d",
		results[Found], results[NotFound], results[MethodNotAllowed], conflicts[kindExact], conflicts[kindTemplate], conflicts[kindPrefix])
	for i, n := range results {
		if n < 1000 {
			t.Errorf("only %d results of kind %v; the generator is too narrow", n, Result(i))
		}
	}
	for k, n := range conflicts {
		if n < 20 {
			t.Errorf("only %d conflicts of kind %v; the generator is too narrow", n, kind(k))
		}
	}
}
