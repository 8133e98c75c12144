package waf

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// attack is one line of testdata/attacks.jsonl.
type attack struct {
	Category string `json:"category"`
	Source   string `json:"source"`
	Payload  string `json:"payload"`
	In       string `json:"in"` // query or json; the tests add cookie and header
}

// fits reports whether a's payload can be sent where a.In says: header
// and cookie values cannot hold control bytes.
func (a attack) fits() bool {
	return !strings.ContainsFunc(a.Payload, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// benign is one line of testdata/benign.jsonl.
type benign struct {
	Name        string            `json:"name"`
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Query       map[string]string `json:"query"`
	ContentType string            `json:"content_type"`
	Body        string            `json:"body"`
	Form        map[string]string `json:"form"`
}

func readJSONL[T any](t testing.TB, file string) []T {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, v)
	}
	return out
}

// browserHeaders are what a typical API client sends.
func browserHeaders(r *http.Request) {
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Language", "en-IE,en;q=0.8")
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoicHJvZHVjdHM6cmVhZCJ9.c2lnbmF0dXJl")
}

func (a attack) request() *http.Request {
	var r *http.Request
	switch a.In {
	case "cookie", "header":
		r = httptest.NewRequest(http.MethodGet, "http://api.example.com/api/products?q=shoes", nil)
	}
	switch a.In {
	case "cookie":
		// As a browser-set cookie would carry it: URL-encoded.
		browserHeaders(r)
		r.Header.Set("Cookie", "session=abc123; pref="+url.QueryEscape(a.Payload))
		return r
	case "header":
		browserHeaders(r)
		r.Header.Set("Referer", "http://shop.example.com/search?q="+a.Payload)
		return r
	}
	if a.In == "json" {
		body, _ := json.Marshal(map[string]any{"name": "Widget", "comment": a.Payload, "qty": 1})
		r = httptest.NewRequest(http.MethodPost, "http://api.example.com/api/products", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(http.MethodGet, "http://api.example.com/api/products?q="+url.QueryEscape(a.Payload), nil)
	}
	browserHeaders(r)
	return r
}

func (b benign) request() *http.Request {
	u := "http://api.example.com" + b.Path
	if len(b.Query) > 0 {
		q := url.Values{}
		for k, v := range b.Query {
			q.Set(k, v)
		}
		u += "?" + q.Encode()
	}
	body := b.Body
	if b.Form != nil {
		f := url.Values{}
		for k, v := range b.Form {
			f.Set(k, v)
		}
		body = f.Encode()
	}
	r := httptest.NewRequest(b.Method, u, strings.NewReader(body))
	if b.ContentType != "" {
		r.Header.Set("Content-Type", b.ContentType)
	}
	browserHeaders(r)
	return r
}

// fullInspection is what the stock comparison feeds: everything.
var fullInspection = inspect{query: true, headers: true, cookies: true, body: true, bodyLimit: 128 << 10, maxArgs: 200}

// stockWAF returns a WAF policy running StockDirectives (Coraza's
// recommended setup and all of CRS, unmodified @rx), fed the same way as
// ours, so that the two differ only in the rules loaded and how they run.
func stockWAF(t testing.TB) *WAF {
	t.Helper()
	eng, err := newEngine(StockDirectives, engineOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return &WAF{engine: eng, release: func() error { return nil }, log: discard,
		s: &settings{mode: ModeBlock, inspect: fullInspection}}
}

// oursWAF builds the waf policy from yaml as a route would.
func oursWAF(t testing.TB, yaml string) *WAF {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatal(err)
	}
	w := p.(*WAF)
	t.Cleanup(func() { w.Close() })
	return w
}

// blocked runs r through w and reports whether it was refused with 403.
func blocked(t testing.TB, w *WAF, r *http.Request) bool {
	t.Helper()
	err := w.Apply(context.Background(), policytest.Exchange(r))
	if err == nil {
		return false
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("got error %v, want a denial or nil", err)
	}
	return d.StatusCode() == http.StatusForbidden && d.Code == Code
}

// jsonPost is the 13-field JSON POST (236 bytes) the stock figures in the
// issue were measured with.
const jsonPost = `{"id":1042,"name":"Trail Running Shoe","sku":"TRS-42-BLU","price":129.99,"currency":"EUR","stock":17,"color":"blue","size":"42","brand":"Acme Outdoor","category":"footwear","active":true,"created":"2025-03-14T09:26:53Z","vat":"IE"}`

func postRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://api.example.com/api/products", strings.NewReader(jsonPost))
	r.Header.Set("Content-Type", "application/json")
	browserHeaders(r)
	return r
}

func getRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://api.example.com/api/products?q=shoes", nil)
	browserHeaders(r)
	return r
}

// TestCorpusAgainstStock runs both configs over the same corpora and the
// same JSON POST, in one run: ours must detect every attack stock detects
// and pass every benign request; both rates and both counts are printed.
func TestCorpusAgainstStock(t *testing.T) {
	attacks := readJSONL[attack](t, "testdata/attacks.jsonl")
	benigns := readJSONL[benign](t, "testdata/benign.jsonl")
	if len(attacks) < 200 || len(benigns) < 200 {
		t.Fatalf("got %d attacks and %d benign requests, want at least 200 each", len(attacks), len(benigns))
	}
	stock := stockWAF(t)
	ours := oursWAF(t, "")
	var stockHits, oursHits, stockFP, oursFP int
	var missedByBoth []string
	// The same payloads in a cookie and in the Referer header.
	placed := map[string][2]int{}
	for i, a := range attacks {
		for _, in := range []string{"cookie", "header"} {
			b := a
			b.In = in
			if !b.fits() {
				continue
			}
			s, o := blocked(t, stock, b.request()), blocked(t, ours, b.request())
			n := placed[in]
			if s {
				n[0]++
			}
			if o {
				n[1]++
			}
			placed[in] = n
			if s && !o {
				t.Errorf("attack %d (%s, %s in %s) %q: blocked by stock, passed by ours", i, a.Category, a.Source, in, a.Payload)
			}
		}
	}
	for i, a := range attacks {
		s, o := blocked(t, stock, a.request()), blocked(t, ours, a.request())
		if s {
			stockHits++
		}
		if o {
			oursHits++
		}
		if s && !o {
			t.Errorf("attack %d (%s, %s in %s) %q: blocked by stock, passed by ours", i, a.Category, a.Source, a.In, a.Payload)
		}
		if !s && !o {
			missedByBoth = append(missedByBoth, fmt.Sprintf("%d %s %s %q", i, a.Category, a.Source, a.Payload))
		}
	}
	for _, b := range benigns {
		if blocked(t, stock, b.request()) {
			stockFP++
		}
		if blocked(t, ours, b.request()) {
			oursFP++
			t.Errorf("benign %s: blocked by ours", b.Name)
		}
	}
	// Rates: 10 rounds of 20 requests each, stock and ours alternating,
	// so that both see the same machine load (2 shared vCPUs).
	var spent [2]time.Duration
	const rounds, batch = 10, 20
	for range rounds {
		for k, w := range []*WAF{stock, ours} {
			start := time.Now()
			for range batch {
				if blocked(t, w, postRequest()) {
					t.Fatal("the JSON POST was blocked")
				}
			}
			spent[k] += time.Since(start)
		}
	}
	rate := func(d time.Duration) float64 { return rounds * batch / d.Seconds() }
	stockRate, oursRate := rate(spent[0]), rate(spent[1])
	t.Logf("attacks: %d; detected: stock %d, ours %d; missed by both: %d", len(attacks), stockHits, oursHits, len(missedByBoth))
	for _, in := range []string{"cookie", "header"} {
		t.Logf("the same payloads in a %s: detected: stock %d, ours %d", in, placed[in][0], placed[in][1])
	}
	for _, m := range missedByBoth {
		t.Logf("  missed by both: %s", m)
	}
	t.Logf("benign: %d; false positives: stock %d, ours %d", len(benigns), stockFP, oursFP)
	t.Logf("13-field JSON POST, one goroutine: stock %.0f req/s, ours %.0f req/s (%.1fx)", stockRate, oursRate, oursRate/stockRate)
}
