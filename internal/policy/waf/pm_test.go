package waf

import (
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// pmRules are the CRS @pm/@pmFromFile rules of the default PL1 rule set
// that the gate must treat as candidates (930121 and 932161 are PL2).
var pmRules = []int{913100, 930120, 930130, 930140, 932120, 932160, 934110, 941180}

// The @pm and @pmFromFile rules are candidates, with the keywords Coraza
// reads: every ASCII keyword of the data file, lowered.
func TestPMCandidates(t *testing.T) {
	w := oursWAF(t, "")
	cand := map[int]bool{}
	for _, p := range w.gate.phase {
		for _, r := range p {
			cand[r.id] = r.removable
		}
	}
	for _, id := range pmRules {
		if !cand[id] {
			t.Errorf("@pm rule %d is not a candidate", id)
		}
	}
	for _, c := range []struct {
		op, file string
		want     []string // some keywords that must be in the set
		ok       bool
	}{
		{"@pm Foo bar", "", []string{"foo", "bar"}, true},
		{"@pm a  b", "", nil, false}, // empty keyword: matches anything
		{"@pm caf\u00e9 x", "", []string{"x"}, true},
		{"@pmFromFile unix-shell.data", "@owasp_crs/REQUEST-932-APPLICATION-ATTACK-RCE.conf", []string{"bin/bash", "etc/passwd"}, true},
		{"@pmf unix-shell.data", "@owasp_crs/REQUEST-932-APPLICATION-ATTACK-RCE.conf", []string{"bin/bash"}, true},
		{"@pmFromFile unix-shell.data", "", nil, false},
		{"@pmFromFile /abs/unix-shell.data", "@owasp_crs/x.conf", nil, false},
		{"@pmFromFile nope.data", "@owasp_crs/x.conf", nil, false},
		{"@contains x", "", nil, false},
	} {
		t.Run(c.op, func(t *testing.T) {
			p, ok := pmPrefilter(c.op, c.file)
			if ok != c.ok {
				t.Fatalf("got ok %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			for _, k := range c.want {
				if !slices.Contains(p.sets[0].strs, k) {
					t.Errorf("keyword %q missing from %d keywords", k, len(p.sets[0].strs))
				}
			}
			for _, k := range p.sets[0].strs {
				if k != strings.ToLower(k) || !isASCII(k) {
					t.Errorf("keyword %q is not lowered ASCII", k)
				}
			}
		})
	}
}

// pmKeywords are the keywords of every CRS data file and of CRS's @pm
// rules: seeds for random values that hit them.
func pmKeywords(t testing.TB) []string {
	t.Helper()
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.data")
	if err != nil || len(files) < 10 {
		t.Fatalf("got %d data files (%v), want at least 10", len(files), err)
	}
	var out []string
	for _, f := range files {
		b, err := fs.ReadFile(coreruleset.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pmFileKeywords(b)...)
	}
	// 941180's keywords.
	return append(out, "document.cookie", "document.write", ".parentnode", ".innerhtml", "window.location", "-moz-binding")
}

// The gate never removes a @pm/@pmFromFile rule that matches: random
// requests carrying CRS keywords (case flipped, wrapped in random bytes,
// in the query, a JSON body, a cookie, the User-Agent and the path) match
// the same rules with and without the gate. The test fails if too few
// @pm rules match (it would prove nothing) or the gate never removes one.
func TestGatePMNeverSkipsAMatch(t *testing.T) {
	gated, plain := oursWAF(t, ""), ungated(t, "")
	var mu sync.Mutex
	removedPM := map[int]int{}
	gated.gate.onRemove = func(id int) {
		if slices.Contains(pmRules, id) {
			mu.Lock()
			removedPM[id]++
			mu.Unlock()
		}
	}
	keywords := pmKeywords(t)
	rng := rand.New(rand.NewPCG(5, 6))
	const filler = "aZ09 ._-/:;,()'\"\\%+&"
	randStr := func(n int) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = filler[rng.IntN(len(filler))]
		}
		return string(b)
	}
	value := func() string {
		if rng.IntN(4) == 0 {
			return randStr(16) // no keyword, most likely
		}
		k := []byte(keywords[rng.IntN(len(keywords))])
		for i := range k {
			if rng.IntN(3) == 0 && k[i] >= 'a' && k[i] <= 'z' {
				k[i] -= 'a' - 'A'
			}
		}
		return randStr(6) + string(k) + randStr(6)
	}
	pmMatched := map[int]int{}
	const n = 300
	for i := range n {
		v := value()
		// A new request each time: a body is read once.
		build := func() *http.Request {
			var r *http.Request
			switch i % 5 {
			case 0:
				r = httptest.NewRequest(http.MethodGet, "http://api.example.com/api/products?q="+url.QueryEscape(v), nil)
			case 1:
				body, _ := json.Marshal(map[string]any{"name": "Widget", "comment": v})
				r = httptest.NewRequest(http.MethodPost, "http://api.example.com/api/products", strings.NewReader(string(body)))
				r.Header.Set("Content-Type", "application/json")
			case 2:
				r = httptest.NewRequest(http.MethodGet, "http://api.example.com/api/products", nil)
				r.Header.Set("Cookie", "pref="+url.QueryEscape(v))
			case 3:
				r = httptest.NewRequest(http.MethodGet, "http://api.example.com/api/products", nil)
				r.Header.Set("Referer", "http://x.example.com/?q="+url.QueryEscape(v))
			case 4:
				r = httptest.NewRequest(http.MethodGet, "http://api.example.com/api/"+url.PathEscape(v), nil)
			}
			browserHeaders(r)
			if i%5 == 3 {
				r.Header.Set("User-Agent", strings.Map(func(c rune) rune {
					if c < 0x20 {
						return -1
					}
					return c
				}, v))
			}
			return r
		}
		got, want := matchedIDs(t, gated, build()), matchedIDs(t, plain, build())
		if !slices.Equal(got, want) {
			t.Errorf("value %q (placement %d): gated matched %v, ungated %v", v, i%5, got, want)
		}
		for _, id := range want {
			if slices.Contains(pmRules, id) {
				pmMatched[id]++
			}
		}
	}
	t.Logf("%d requests; @pm rules matched %v; removed by the gate %v", n, pmMatched, removedPM)
	if len(pmMatched) < 5 {
		t.Errorf("only %d distinct @pm rules matched, want at least 5", len(pmMatched))
	}
	if len(removedPM) < 5 {
		t.Errorf("the gate removed only %d distinct @pm rules, want at least 5", len(removedPM))
	}
}
