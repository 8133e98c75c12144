package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// responseSpec declares GET /product answering {name, price}.
const responseSpec = `openapi: 3.1.0
info: {title: products, version: "1"}
paths:
  /product:
    get:
      parameters:
        - {name: case, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1}}
      responses:
        "200":
          description: a product
          content:
            application/json:
              schema:
                type: object
                required: [name, price]
                properties:
                  name: {type: string}
                  price: {type: number}
`

// Any number of response filters on a route hold the response, and each
// one that refuses it is heard, whatever the order: dlp and openapi both
// blocking block through either, in both orders, with the security
// headers of a headers policy (nearest the client or farthest from it) on
// every response, refusals and the chain's own denials included.
func TestResponseFiltersHoldTogether(t *testing.T) {
	const card = "4111 1111 1111 1111"
	bodies := map[string]string{
		"clean":   `{"name":"gift","price":10}`,
		"card":    `{"name":"gift ` + card + `","price":10}`,
		"invalid": `{"name":"gift","price":"free"}`,
		"both":    `{"name":"gift ` + card + `","price":"free"}`,
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=upstream")
		w.Header().Set("Etag", `"v1"`)
		io.WriteString(w, bodies[r.URL.Query().Get("case")])
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(spec, []byte(responseSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		dlp     = "      - dlp: {credit_cards: {action: block}}\n"
		openapi = "      - openapi: {spec: SPEC, validate: {response: true}, on_response_mismatch: block}\n"
		headers = "      - headers: {security: {frame_options: DENY, content_type_options: true}}\n"
	)
	orders := map[string][]string{
		"dlp,openapi,headers": {dlp, openapi, headers},
		"openapi,dlp,headers": {openapi, dlp, headers},
		"headers,dlp,openapi": {headers, dlp, openapi},
		"headers,openapi,dlp": {headers, openapi, dlp},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			yaml := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: products
    match: {path: /product}
    upstream: {url: "` + up.URL + `"}
    policies:
` + strings.ReplaceAll(strings.Join(order, ""), "SPEC", spec)
			g := startGateway(t, yaml, nil)
			for _, tt := range []struct {
				query, wantCode string
				wantStatus      int
				codes           []string // acceptable codes, when either filter may refuse
			}{
				{"case=clean", "", 200, nil},
				{"case=card", "", 502, []string{"response_blocked"}},
				{"case=invalid", "", 502, []string{"response_invalid"}},
				{"case=both", "", 502, []string{"response_blocked", "response_invalid"}},
				// The chain's own denial (openapi refusing the request).
				{"case=clean&limit=0", "", 400, []string{"request_invalid"}},
			} {
				resp, body := do(t, nil, newReq(t, "GET", g.base+"/product?"+tt.query, nil))
				if resp.StatusCode != tt.wantStatus {
					t.Errorf("%s: got %d %s, want %d", tt.query, resp.StatusCode, body, tt.wantStatus)
					continue
				}
				if strings.Contains(string(body), card) || strings.Contains(string(body), "free") {
					t.Errorf("%s: the refused body reached the client: %s", tt.query, body)
				}
				if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s: no security headers: %v", tt.query, resp.Header)
				}
				if resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("%s: no X-Request-Id", tt.query)
				}
				if tt.wantStatus == 200 {
					if string(body) != bodies["clean"] || resp.Header.Get("Set-Cookie") == "" {
						t.Errorf("%s: got %s, header %v", tt.query, body, resp.Header)
					}
					continue
				}
				var p struct{ Code string }
				if err := json.Unmarshal(body, &p); err != nil || !contains(tt.codes, p.Code) {
					t.Errorf("%s: code %q (%v), want one of %v", tt.query, p.Code, err, tt.codes)
				}
				if resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s: Content-Type %q", tt.query, resp.Header.Get("Content-Type"))
				}
				for _, k := range []string{"Set-Cookie", "Etag"} {
					if v := resp.Header.Get(k); v != "" && resp.StatusCode == 502 {
						t.Errorf("%s: the refusal carries the upstream's %s: %q", tt.query, k, v)
					}
				}
			}
			// The refusals are in the access log as the filter's denials.
			log := g.access.String()
			for _, want := range []string{`"decision":"deny","code":"response_blocked","policy":"dlp"`, `"code":"response_invalid","policy":"openapi"`} {
				if !strings.Contains(log, want) {
					t.Errorf("access log lacks %s:\n%s", want, log)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The gateway's own responses (no route, an upstream it cannot reach)
// still reach the client whole, with the route's header filters on what a
// route answers.
func TestGatewayOwnResponsesThroughFilters(t *testing.T) {
	yaml := `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: down
    match: {path: /down}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - headers: {security: {frame_options: DENY}}
      - dlp: {credit_cards: {action: block}}
`
	g := startGateway(t, yaml, nil)
	resp, body := do(t, nil, newReq(t, "GET", g.base+"/down", nil))
	if resp.StatusCode != 502 || resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(string(body), "upstream_unavailable") {
		t.Errorf("502: got %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = do(t, nil, newReq(t, "GET", g.base+"/nowhere", nil))
	if resp.StatusCode != 404 || !strings.Contains(string(body), "no_route") {
		t.Errorf("404: got %d %s", resp.StatusCode, body)
	}
}

// A filter holding the status until the body is complete (openapi's
// response check) sends it after the proxy set the trailers: they still
// go out as trailers, never as header fields.
func TestHeldResponseKeepsTrailers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		io.WriteString(w, `{"name":"gift","price":10}`)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
	}))
	t.Cleanup(up.Close)
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(spec, []byte(responseSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: products
    match: {path: /product}
    upstream: {url: "`+up.URL+`"}
    policies:
      - openapi: {spec: `+spec+`, validate: {response: true}, on_response_mismatch: block}
`, nil)
	resp, body := do(t, nil, newReq(t, "GET", g.base+"/product", nil))
	if resp.StatusCode != 200 || string(body) != `{"name":"gift","price":10}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Checksum") != "" || resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("header %v, trailer %v; want X-Checksum as a trailer only", resp.Header, resp.Trailer)
	}
}

// A policy after dlp that puts back what dlp removed from the request
// (Accept-Encoding, Range) gets the upstream to compress or cut its
// response: that response is refused, never passed unscanned.
func TestDLPAfterRequestRewrite(t *testing.T) {
	const card = "4111 1111 1111 1111"
	body := `{"name":"gift ` + card + `","price":10}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Accept-Encoding") != "" {
			w.Header().Set("Content-Encoding", "br")
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
	}))
	t.Cleanup(up.Close)
	for _, set := range []string{"{Accept-Encoding: br}", "{Range: bytes=0-20}"} {
		g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: products
    match: {path: /product}
    upstream: {url: "`+up.URL+`"}
    policies:
      - dlp: {credit_cards: {}}
      - headers: {request: {set: `+set+`}}
`, nil)
		resp, b := do(t, nil, newReq(t, "GET", g.base+"/product", nil))
		if resp.StatusCode != 502 || !strings.Contains(string(b), "response_unscannable") || strings.Contains(string(b), card) {
			t.Errorf("%s: got %d %s", set, resp.StatusCode, b)
		}
	}
}
