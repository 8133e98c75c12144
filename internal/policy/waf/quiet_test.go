package waf

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// quietCase is one request for the quiet path's differential tests.
type quietCase struct {
	name string
	r    func() *http.Request
}

// outcome runs r through every rule (no quiet path) and reports whether
// the policy would log or act on it: a logged match or an interruption.
func outcome(t testing.TB, w *WAF, r *http.Request) bool {
	t.Helper()
	tx := w.engine.NewTransaction()
	defer tx.Close()
	it, err := w.feed(policytest.Exchange(r), tx, false)
	if err != nil || it != nil {
		return true
	}
	tx.ProcessLogging()
	if tx.IsInterrupted() {
		return true
	}
	for _, m := range tx.MatchedRules() {
		if logged(m) {
			return true
		}
	}
	return false
}

// proved runs the quiet path alone on r.
func proved(w *WAF, r *http.Request) bool {
	tx := w.engine.NewTransaction()
	defer tx.Close()
	return w.tryQuiet(policytest.Exchange(r), tx) == quietProved
}

// crsRequest turns a regression stage into a request, or nil when net/http
// would not build it (the gateway never sees such a request).
func crsRequest(c *crsCase) *http.Request {
	u, err := url.ParseRequestURI(c.uri)
	if err != nil {
		return nil
	}
	r := &http.Request{Method: c.method, URL: u, Proto: c.version, Header: http.Header{},
		RequestURI: c.uri, RemoteAddr: "192.0.2.7:40000", Host: "localhost"}
	if len(c.body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(c.body))
		r.ContentLength = int64(len(c.body))
	} else {
		r.Body = http.NoBody
	}
	for _, h := range c.headers {
		if strings.EqualFold(h[0], "Host") {
			r.Host = h[1]
			continue
		}
		r.Header.Add(h[0], h[1])
	}
	return r
}

// quietCorpus is every request the differential tests use: the CRS
// regression suite's stages, the attack and benign corpora, and benign
// API calls with attack payloads put in each place a rule reads.
func quietCorpus(t testing.TB) []quietCase {
	var out []quietCase
	cases := crsRegression(t)
	for i := range cases {
		c := &cases[i]
		if crsRequest(c) == nil {
			continue
		}
		out = append(out, quietCase{"crs " + c.name, func() *http.Request { return crsRequest(c) }})
	}
	for _, a := range readJSONL[attack](t, "testdata/attacks.jsonl") {
		for _, in := range []string{a.In, "cookie", "header"} {
			b := a
			b.In = in
			if b.fits() {
				out = append(out, quietCase{"attack " + in + " " + a.Payload, b.request})
			}
		}
	}
	for _, b := range readJSONL[benign](t, "testdata/benign.jsonl") {
		out = append(out, quietCase{"benign " + b.Path, b.request})
	}
	bases := []string{"/product/p-1001", "/api/products?q=shoes&page=2", "/v1/orders/42/items?sort=-date&fields=id,name"}
	payloads := []string{"../../etc/passwd", "<script>alert(1)</script>", "1' OR '1'='1", "; cat /etc/passwd",
		"${jndi:ldap://x/a}", "eval(atob('YQ=='))", "\x00", "%00", "a\x01b", "<?php system($_GET['c']); ?>",
		"/.git/config", "() { :; }; echo", "http://169.254.169.254/latest/meta-data/", "{{7*7}}"}
	for _, base := range bases {
		for _, client := range []string{"none", "curl", "browser", "bearer"} {
			out = append(out, quietCase{"api " + client + " " + base, func() *http.Request { return apiRequest(base, client) }})
			for _, p := range payloads {
				for _, where := range []string{"path", "query", "argname", "header", "headername", "cookie", "ua", "host", "method"} {
					out = append(out, quietCase{"api " + client + " " + where + " " + p, func() *http.Request {
						r := apiRequest(base, client)
						placePayload(r, where, p)
						return r
					}})
				}
			}
		}
	}
	return out
}

// apiRequest is a bodiless API call as clients send them.
func apiRequest(target, client string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://api.example.com"+target, nil)
	r.RemoteAddr = "203.0.113.9:51000"
	switch client {
	case "curl":
		r.Header.Set("User-Agent", "curl/8.14.1")
		r.Header.Set("Accept", "*/*")
	case "browser":
		browserHeaders(r)
	case "bearer":
		// bench/run.sh's REST request (wrk with a token).
		r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoicHJvZHVjdHM6cmVhZCJ9.c2lnbmF0dXJl")
	}
	return r
}

// placePayload puts p where a rule may read it, encoded as a client
// would send it there.
func placePayload(r *http.Request, where, p string) {
	switch where {
	case "path":
		r.URL.Path += "/" + p
		r.URL.RawPath = ""
	case "query":
		q := r.URL.Query()
		q.Set("x", p)
		r.URL.RawQuery = q.Encode()
	case "argname":
		r.URL.RawQuery += "&" + url.QueryEscape(p) + "=1"
	case "header":
		r.Header.Set("X-Note", p)
	case "headername":
		r.Header.Set("X-"+strings.Map(func(c rune) rune {
			if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
				return '-'
			}
			return c
		}, p), "1")
	case "cookie":
		r.Header.Set("Cookie", "pref="+url.QueryEscape(p))
	case "ua":
		r.Header.Set("User-Agent", p)
	case "host":
		r.Host = p
	case "method":
		r.Method = strings.ToUpper(strings.Map(func(c rune) rune {
			if c < 'a' || c > 'z' {
				return -1
			}
			return c
		}, p))
		if r.Method == "" {
			r.Method = "PROPFIND"
		}
	}
}

// TestQuietMatchesRules is the quiet path's guard: on every request of
// the corpus where it proves a request quiet, running every rule must
// neither log nor interrupt. It also requires the proof to hold on most
// quiet API calls, so that it is not vacuous, at paranoia levels 1 and 2.
func TestQuietMatchesRules(t *testing.T) {
	corpus := quietCorpus(t)
	if len(corpus) < 5000 {
		t.Fatalf("corpus of %d requests, want at least 5000", len(corpus))
	}
	step := 1
	if raceEnabled {
		step = 7
	}
	for _, level := range []string{"", "paranoia_level: 2"} {
		w := oursWAF(t, level)
		if w.quiet == nil {
			if level == "" {
				t.Fatalf("no quiet path at the defaults: %s", *quietWhy.Load())
			}
			t.Logf("%q: no quiet path (%s)", level, *quietWhy.Load())
			continue
		}
		var quiet, provedN, loud int
		for i := 0; i < len(corpus); i += step {
			c := corpus[i]
			p := proved(w, c.r())
			o := outcome(t, w, c.r())
			if p && o {
				t.Errorf("%q %s: proved quiet, but the rules log or act on it", level, c.name)
			}
			if !o {
				quiet++
			} else {
				loud++
			}
			if p {
				provedN++
			}
		}
		t.Logf("%q: %d requests: %d quiet, %d proved quiet; %d logged or refused", level, quiet+loud, quiet, provedN, loud)
		if level == "" && provedN*2 < quiet {
			t.Errorf("%q: proved %d of %d quiet requests, want at least half", level, provedN, quiet)
		}
	}
}

// TestQuietEveryProofMatters breaks each proof in turn (assumes it holds
// without checking) and requires the corpus to catch it: a request the
// broken proof calls quiet that the rules log or refuse. A proof no
// request can catch would be a proof the corpus does not test.
func TestQuietEveryProofMatters(t *testing.T) {
	corpus := quietCorpus(t)
	names := map[int]string{proofSame: "equal inputs (3)", proofPrefilter: "pre-filter (4)", proofEval: "evaluation (5)",
		proofAlone: "run alone (7)", proofRestricted: "restricted headers (6)"}
	for _, broken := range []int{proofSame, proofPrefilter, proofEval, proofAlone, proofRestricted} {
		w := oursWAF(t, "")
		if w.quiet == nil {
			t.Fatal("no quiet path")
		}
		w.quiet.assume = broken
		caught := ""
		for i := 0; i < len(corpus) && caught == ""; i++ {
			c := corpus[i]
			if proved(w, c.r()) && outcome(t, w, c.r()) {
				caught = c.name
			}
		}
		if caught == "" {
			t.Errorf("proof %s assumed: no request of the corpus catches it", names[broken])
			continue
		}
		t.Logf("proof %s assumed: caught by %s", names[broken], caught)
	}
}

// BenchmarkQuiet compares a quiet API call with and without the quiet
// path, on one WAF: requests go to each in alternating blocks of 50, so
// that a shared machine's load falls on both alike, and it reports the
// process CPU per request of each.
func BenchmarkQuiet(b *testing.B) {
	w := oursWAF(b, "")
	if w.quiet == nil {
		b.Fatal("no quiet path")
	}
	full := *w
	full.quiet = nil
	for _, c := range []struct {
		name   string
		client string
		target string
	}{{"wrk", "bearer", "/product/p-1001"}, {"curl", "curl", "/api/products?q=shoes&page=2"}, {"browser", "browser", "/api/products?q=shoes"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := alternating(b, func() { mustPass(b, w, apiRequest(c.target, c.client)) },
				func() { mustPass(b, &full, apiRequest(c.target, c.client)) })
			b.ReportMetric(cpu[0], "quiet-cpu-µs/op")
			b.ReportMetric(cpu[1], "rules-cpu-µs/op")
		})
	}
}

// TestQuietCustomRules: the quiet path with the user's own rules, on
// case-sensitive and case-insensitive keys, counts and cookies. A request
// a custom rule refuses is refused; a request none touches is proved
// quiet (the path is not simply off).
func TestQuietCustomRules(t *testing.T) {
	w := oursWAF(t, `directives:
  - 'SecRule ARGS:Foo "@streq bad" "id:10001,phase:1,deny,status:403,log,msg:''custom arg''"'
  - 'SecRule REQUEST_HEADERS:X-Debug "@streq 1" "id:10002,phase:1,deny,status:403,log,msg:''custom header''"'
  - 'SecRule REQUEST_COOKIES:Session "@beginsWith admin" "id:10003,phase:2,deny,status:403,log,msg:''custom cookie''"'
  - 'SecRule &ARGS:token "@gt 1" "id:10004,phase:2,deny,status:403,log,msg:''custom count''"'
  - 'SecRule REMOTE_ADDR "@ipMatch 198.51.100.0/24" "id:10005,phase:1,deny,status:403,log,msg:''custom ip''"'
`)
	if w.quiet == nil {
		t.Fatalf("no quiet path: %s", *quietWhy.Load())
	}
	for _, c := range []struct {
		name   string
		mutate func(*http.Request)
		refuse bool
	}{
		{"plain", func(*http.Request) {}, false},
		{"arg Foo=bad", func(r *http.Request) { r.URL.RawQuery = "Foo=bad" }, true},
		{"arg foo=bad", func(r *http.Request) { r.URL.RawQuery = "foo=bad" }, true}, // Coraza's ARGS keys ignore case
		{"arg Foo=good", func(r *http.Request) { r.URL.RawQuery = "Foo=good" }, false},
		{"header", func(r *http.Request) { r.Header.Set("X-Debug", "1") }, true},
		{"header lower", func(r *http.Request) { r.Header["x-debug"] = []string{"1"} }, true},
		{"cookie", func(r *http.Request) { r.Header.Set("Cookie", "Session=admin-1") }, true},
		{"cookie other", func(r *http.Request) { r.Header.Set("Cookie", "Session=user-1") }, false},
		{"two tokens", func(r *http.Request) { r.URL.RawQuery = "token=a&token=b" }, true},
		{"one token", func(r *http.Request) { r.URL.RawQuery = "token=a" }, false},
		{"address", func(r *http.Request) { r.RemoteAddr = "198.51.100.7:4000" }, true},
	} {
		r := apiRequest("/api/products", "curl")
		c.mutate(r)
		got := blocked(t, w, r)
		if got != c.refuse {
			t.Errorf("%s: refused %v, want %v", c.name, got, c.refuse)
		}
		r = apiRequest("/api/products", "curl")
		c.mutate(r)
		if p := proved(w, r); p && c.refuse || !p && !c.refuse {
			t.Errorf("%s: proved quiet %v", c.name, p)
		}
	}
}

// TestQuietTransformsMatchCoraza checks transform, on every chain of
// transformations the rule set uses (paranoia level 4), against Coraza's
// own: one rule per chain records what its operator sees, on random
// values (ASCII biased to the bytes transformations act on, base64 text,
// bytes of 0x80 and above) and API-like ones. Where transform gives a
// value, it must be Coraza's.
func TestQuietTransformsMatchCoraza(t *testing.T) {
	recordOnce.Do(func() {
		plugins.RegisterOperator("ghrecord", func(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
			return recordOp{name: o.Arguments}, nil
		})
	})
	w := oursWAF(t, "paranoia_level: 4")
	if w.gate.quiet == nil {
		t.Fatalf("no quiet rules: %s", *quietWhy.Load())
	}
	chains := map[string][]string{}
	for _, r := range w.gate.quiet.rules {
		for _, l := range r.links {
			if len(l.chain) > 0 {
				chains[strings.Join(l.chain, ",")] = l.chain
			}
		}
	}
	if len(chains) < 20 {
		t.Fatalf("only %d chains", len(chains))
	}
	keys := slices.Sorted(maps.Keys(chains))
	var rules strings.Builder
	for i, k := range keys {
		fmt.Fprintf(&rules, "SecRule ARGS_GET \"@ghrecord c%d\" \"id:%d,phase:1,pass,nolog,t:none,t:%s\"\n", i, 400+i, strings.Join(chains[k], ",t:"))
		fmt.Fprintf(&rules, "SecRule ARGS_GET \"@ghrecord m%d\" \"id:%d,phase:1,pass,nolog,multiMatch,t:none,t:%s\"\n", i, 600+i, strings.Join(chains[k], ",t:"))
	}
	eng, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives("SecRuleEngine On\n" + rules.String()))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	const ascii = "aZbY09 ./\\:..;,\"'^()\t\n\r%+&#*-_=<>!x2f5c"
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n -._~"
	values := []string{"/product/p-1001", "/api/products", "/v1/orders/42/items", "shoes", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"curl/8.14.1", "*/*", "en-IE,en;q=0.8", "ZXZhbCgxKQ==", "Y29uc29sZS5sb2co", "/calibrate", "", "\x00", "é", "\xff\xfe"}
	for range 2500 {
		b := make([]byte, 1+rng.IntN(20))
		alphabet := ascii
		if rng.IntN(2) == 0 {
			alphabet = b64
		}
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(25) == 0 {
				b[i] = byte(0x80 + rng.IntN(0x80))
			}
		}
		values = append(values, string(b))
	}
	computed, computedMulti := map[string]int{}, map[string]int{}
	for _, v := range values {
		rec := recordRun(eng, v)
		for i, k := range keys {
			got := rec[fmt.Sprintf("c%d", i)]
			if len(got) != 1 {
				t.Fatalf("%s on %q: recorded %q, want one value", k, v, got)
			}
			gotMulti := rec[fmt.Sprintf("m%d", i)]
			if ours, ok := multiValues(chains[k], v); ok {
				computedMulti[k]++
				if !slices.Equal(ours, gotMulti) {
					t.Errorf("multiMatch t:%s on %q: ours %q, Coraza's %q", k, v, ours, gotMulti)
				}
			}
			ours, ok := transform(chains[k], v)
			if !ok {
				continue
			}
			computed[k]++
			if ours != got[0] {
				t.Errorf("t:%s on %q: ours %q, Coraza's %q", k, v, ours, got[0])
			}
		}
	}
	n := 0
	for _, k := range keys {
		if computed[k] > 0 {
			n++
		}
	}
	m := 0
	for _, k := range keys {
		if computedMulti[k] > 0 {
			m++
		}
	}
	t.Logf("%d chains, %d computed on some value (%d with multiMatch); %d values", len(keys), n, m, len(values))
	if n < len(keys)*3/4 {
		t.Errorf("transform computed only %d of %d chains", n, len(keys))
	}
}

// TestQuietRestrictedLists: proof 6 on its two shapes. A file extension
// or a header name on CRS's restricted lists is refused and not proved
// quiet; others are proved quiet.
func TestQuietRestrictedLists(t *testing.T) {
	w := oursWAF(t, "")
	for _, c := range []struct {
		target string
		header string
		flag   bool
	}{
		{"/static/app.js", "", false},
		{"/v1/orders.json", "", false},
		{"/report.PDF", "", false},
		{"/db/backup.bak", "", true},
		{"/site/web.config", "", true},
		{"/db/dump.SQL", "", true},
		{"/product/p-1001", "X-Trace", false},
		{"/product/p-1001", "Proxy", true},
		{"/product/p-1001", "Content-Range", true},
	} {
		r := apiRequest(c.target, "curl")
		if c.header != "" {
			r.Header.Set(c.header, "1")
		}
		if got := outcome(t, w, r); got != c.flag {
			t.Errorf("%s %s: the rules flag it %v, want %v", c.target, c.header, got, c.flag)
		}
		if got := proved(w, r); got == c.flag {
			t.Errorf("%s %s: proved quiet %v", c.target, c.header, got)
		}
	}
}
