package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzRouterMatch: for a random valid route set (from seed) and any
// request, Match never panics and agrees with the brute-force reference
// of reference_test.go. Paths are given as the gateway hands them over:
// starting with "/" (cleanPath refuses the rest).
func FuzzRouterMatch(f *testing.F) {
	f.Add(uint64(1), "a.test", "GET", "/a/b")
	f.Add(uint64(2), "A.TEST.:8080", "HEAD", "/a//c/")
	f.Add(uint64(3), "y.x.b.test", "POST", "/{p0}/b")
	f.Add(uint64(4), "", "PUT", "/")
	f.Add(uint64(5), "[::1]:80", "get", "/a/%2F/b")
	f.Fuzz(func(t *testing.T, seed uint64, host, method, path string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		var routes []Route[int]
		for len(routes) < 1+int(seed%16) {
			rt := randRoute(rng)
			rt.Name = fmt.Sprint(len(routes))
			rt.Value = len(routes)
			cand := append(slices.Clone(routes), rt)
			if len(refConflicts(cand)) == 0 {
				routes = cand
			}
		}
		r, err := New(routes)
		if err != nil {
			t.Fatalf("routes the reference accepts: %v", err)
		}
		m, p := r.Match(host, method, path, nil)
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
	})
}
