package apikey

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/google/go-cmp/cmp"
)

// Two fixed keys and their hashes, computed independently of HashKey.
const (
	readerKey = "gh_reader-key-for-tests-only-0000000000000000"
	writerKey = "gh_writer-key-for-tests-only-0000000000000000"
)

func hashOf(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func settings(extra string) string {
	return extra + `
keys:
  - consumer: reader-app
    hash: "` + hashOf(readerKey) + `"
    scopes: [products:read]
    tier: gold
    metadata: {team: catalog, level: 3}
  - consumer: writer-app
    hash: "` + hashOf(writerKey) + `"
    scopes: [products:read, products:write]
`
}

func newAuth(t testing.TB, yaml string) *Authenticator {
	t.Helper()
	a, err := New(policytest.Node(t, yaml), &authn.Env{Env: policytest.Env(), Realm: "api"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthenticate(t *testing.T) {
	header := newAuth(t, settings(""))
	query := newAuth(t, settings("query: api_key\n"))
	custom := newAuth(t, settings("header: X-Gateway-Token\n"))
	tests := []struct {
		name     string
		a        *Authenticator
		target   string
		header   http.Header
		consumer string // "" for a refusal or no credentials
		status   int    // of the Denial; 0 for none
		code     string
		noCreds  bool
	}{
		{name: "header", a: header, target: "/p", header: http.Header{"X-Api-Key": {readerKey}}, consumer: "reader-app"},
		{name: "header name case-insensitive", a: header, target: "/p", header: hdr("x-api-key", writerKey), consumer: "writer-app"},
		{name: "custom header", a: custom, target: "/p", header: hdr("X-Gateway-Token", writerKey), consumer: "writer-app"},
		{name: "custom header ignores the default", a: custom, target: "/p", header: hdr("X-Api-Key", writerKey), noCreds: true},
		{name: "absent", a: header, target: "/p", noCreds: true},
		{name: "bearer token is not ours", a: header, target: "/p", header: hdr("Authorization", "Bearer "+readerKey), noCreds: true},
		{name: "unknown key", a: header, target: "/p", header: hdr("X-Api-Key", "gh_not-a-key"), status: 401, code: "invalid_api_key"},
		{name: "empty header", a: header, target: "/p", header: http.Header{"X-Api-Key": {""}}, status: 401, code: "invalid_api_key"},
		{name: "hash instead of key", a: header, target: "/p", header: hdr("X-Api-Key", hashOf(readerKey)), status: 401, code: "invalid_api_key"},
		{name: "key with a suffix", a: header, target: "/p", header: hdr("X-Api-Key", readerKey+"x"), status: 401, code: "invalid_api_key"},
		{name: "huge key", a: header, target: "/p", header: hdr("X-Api-Key", strings.Repeat("a", maxKeyLen+1)), status: 401, code: "invalid_api_key"},
		{name: "two headers", a: header, target: "/p", header: http.Header{"X-Api-Key": {readerKey, writerKey}}, status: 400, code: "invalid_request"},
		{name: "query not configured", a: header, target: "/p?api_key=" + readerKey, noCreds: true},
		{name: "query", a: query, target: "/p?a=1&api_key=" + readerKey, consumer: "reader-app"},
		{name: "query escaped value", a: query, target: "/p?api_key=" + url.QueryEscape(writerKey), consumer: "writer-app"},
		{name: "query escaped name", a: query, target: "/p?api%5Fkey=" + readerKey, consumer: "reader-app"},
		{name: "query other name", a: query, target: "/p?apikey=" + readerKey, noCreds: true},
		{name: "query header still works", a: query, target: "/p?a=1", header: hdr("X-Api-Key", readerKey), consumer: "reader-app"},
		{name: "query empty", a: query, target: "/p?api_key=", status: 401, code: "invalid_api_key"},
		{name: "query without value", a: query, target: "/p?api_key", status: 401, code: "invalid_api_key"},
		{name: "query badly escaped", a: query, target: "/p?api_key=%zz", status: 401, code: "invalid_api_key"},
		{name: "query unknown", a: query, target: "/p?api_key=nope", status: 401, code: "invalid_api_key"},
		{name: "query twice", a: query, target: "/p?api_key=" + readerKey + "&api_key=" + writerKey, status: 400, code: "invalid_request"},
		{name: "query twice, one escaped", a: query, target: "/p?api_key=" + readerKey + "&api%5fkey=x", status: 400, code: "invalid_request"},
		{name: "query and header", a: query, target: "/p?api_key=" + readerKey, header: hdr("X-Api-Key", readerKey), status: 400, code: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for k, vs := range tt.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			pr, err := tt.a.Authenticate(context.Background(), policytest.Exchange(r))
			switch {
			case tt.noCreds:
				if !errors.Is(err, authn.ErrNoCredentials) {
					t.Fatalf("got %v, %v, want ErrNoCredentials", pr, err)
				}
			case tt.status != 0:
				d, ok := policy.AsDenial(err)
				if !ok {
					t.Fatalf("got %v, %v, want a denial", pr, err)
				}
				if d.Status != tt.status || d.Code != tt.code {
					t.Errorf("got %d %s, want %d %s", d.Status, d.Code, tt.status, tt.code)
				}
				if d.Header.Get("Www-Authenticate") != "" {
					t.Errorf("API key denial has a challenge: %v", d.Header)
				}
				if strings.Contains(d.Detail, readerKey) || strings.Contains(d.Detail, "gh_") {
					t.Errorf("detail %q echoes the key", d.Detail)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if pr.Subject != tt.consumer || pr.Consumer != tt.consumer || pr.ClientID != tt.consumer || pr.Method != "apikey" {
					t.Errorf("got %+v, want consumer %s by apikey", pr, tt.consumer)
				}
			}
		})
	}
}

func hdr(k, v string) http.Header {
	h := http.Header{}
	h.Add(k, v)
	return h
}

func TestPrincipal(t *testing.T) {
	a := newAuth(t, settings(""))
	auth := func() *policy.Principal {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Api-Key", readerKey)
		pr, err := a.Authenticate(context.Background(), policytest.Exchange(r))
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	got := auth()
	want := &policy.Principal{
		Subject: "reader-app", ClientID: "reader-app", Consumer: "reader-app",
		Scopes: []string{"products:read"},
		Claims: map[string]any{"team": "catalog", "level": 3, "tier": "gold"},
		Method: "apikey",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	// Each request gets its own Principal: a policy replacing a field does
	// not change the next request's.
	got.Subject = "someone-else"
	if again := auth(); again.Subject != "reader-app" {
		t.Errorf("second principal's subject = %q, want reader-app", again.Subject)
	}
}

func TestStrip(t *testing.T) {
	tests := []struct {
		name      string
		extra     string
		target    string
		header    string
		wantQuery string
		wantKey   string // the X-Api-Key header the upstream sees
	}{
		{"header stripped", "", "/p?a=1", readerKey, "a=1", ""},
		{"query stripped, rest byte for byte", "query: api_key\n", "/p?a=1&api_key=" + readerKey + "&b=%2F+x&c", "", "a=1&b=%2F+x&c", ""},
		{"query only param", "query: api_key\n", "/p?api_key=" + readerKey, "", "", ""},
		{"escaped query name stripped", "query: api_key\n", "/p?api%5Fkey=" + readerKey + "&z=9", "", "z=9", ""},
		{"unconfigured query kept", "", "/p?api_key=zzz", readerKey, "api_key=zzz", ""},
		{"strip false keeps header", "strip: false\n", "/p", readerKey, "", readerKey},
		{"strip false keeps query", "strip: false\nquery: api_key\n", "/p?api_key=" + readerKey, "", "api_key=" + readerKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, settings(tt.extra))
			type seen struct{ query, key string }
			got := make(chan seen, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- seen{r.URL.RawQuery, r.Header.Get("X-Api-Key")}
			}))
			defer up.Close()
			target, _ := url.Parse(up.URL)
			rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := a.Authenticate(r.Context(), policytest.Exchange(r)); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return
				}
				rp.ServeHTTP(w, r)
			}))
			defer gw.Close()
			req, _ := http.NewRequest("GET", gw.URL+tt.target, nil)
			if tt.header != "" {
				req.Header.Set("X-Api-Key", tt.header)
			}
			res, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			s := <-got
			if s.query != tt.wantQuery || s.key != tt.wantKey {
				t.Errorf("upstream saw query %q key %q, want %q %q", s.query, s.key, tt.wantQuery, tt.wantKey)
			}
		})
	}
}

// TestHashCompare shows the lookup compares the whole hash: a stored hash
// differing from the presented key's in its last byte is refused, as is
// one differing in its first (another bucket).
func TestHashCompare(t *testing.T) {
	for _, at := range []int{0, sha256.Size - 1} {
		a := newAuth(t, settings(""))
		sum := sha256.Sum256([]byte(readerKey))
		i := a.p.keys.lookup(&sum)
		if i < 0 {
			t.Fatal("reader key not found")
		}
		a.p.keys.hashes[i*sha256.Size+at] ^= 1
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Api-Key", readerKey)
		_, err := a.Authenticate(context.Background(), policytest.Exchange(r))
		if d, ok := policy.AsDenial(err); !ok || d.Code != "invalid_api_key" {
			t.Errorf("byte %d flipped: got %v, want invalid_api_key", at, err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	const n = 1000
	format := regexp.MustCompile(`^gh_[A-Za-z0-9_-]{43}$`)
	seen := make(map[string]bool, n)
	ones := 0
	for range n {
		key, hash, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if !format.MatchString(key) {
			t.Fatalf("key %q does not match %v", key, format)
		}
		if seen[key] {
			t.Fatalf("key %q generated twice", key)
		}
		seen[key] = true
		if want := hashOf(key); hash != want {
			t.Fatalf("hash %q, want %q", hash, want)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, "gh_"))
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q: %d bytes, %v", key, len(raw), err)
		}
		for _, b := range raw {
			ones += bits.OnesCount8(b)
		}
	}
	// 256000 fair bits: the share of ones is 0.5 with a standard deviation
	// of 0.001; 0.49 to 0.51 is ten of them.
	if share := float64(ones) / (n * 256); share < 0.49 || share > 0.51 {
		t.Errorf("share of one bits %.4f, want about 0.5", share)
	}
}

// TestCreateRoundTrip feeds what the CLI prints back into a config and
// authenticates with the printed key.
func TestCreateRoundTrip(t *testing.T) {
	var out strings.Builder
	if err := WriteCreateOutput(&out, "billing@acme"); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	key := regexp.MustCompile(`(?m)^    (gh_\S+)$`).FindStringSubmatch(text)
	if key == nil {
		t.Fatalf("no key in output:\n%s", text)
	}
	i := strings.Index(text, "    - consumer:")
	if i < 0 {
		t.Fatalf("no config entry in output:\n%s", text)
	}
	if strings.Count(text, key[1]) != 1 {
		t.Errorf("key printed %d times, want once", strings.Count(text, key[1]))
	}
	a := newAuth(t, "keys:\n"+text[i:])
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Api-Key", key[1])
	pr, err := a.Authenticate(context.Background(), policytest.Exchange(r))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Consumer != "billing@acme" {
		t.Errorf("consumer %q, want billing@acme", pr.Consumer)
	}

	out.Reset()
	if err := WriteCreateOutput(&out, "bad name"); err == nil || out.Len() != 0 {
		t.Errorf("bad consumer name: err %v, wrote %q", err, out.String())
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	a := newAuth(b, settings(""))
	for _, bb := range []struct{ name, key string }{{"hit", readerKey}, {"miss", "gh_unknown-key-0000000000000000000000000000000"}} {
		b.Run(bb.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			ex := policytest.Exchange(r)
			vals := []string{bb.key}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r.Header["X-Api-Key"] = vals // stripped by every call
				pr, err := a.Authenticate(ctx, ex)
				if (pr != nil) != (bb.name == "hit") {
					b.Fatal(err)
				}
			}
		})
	}
}
