package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// TestServeAndDryRunDecideAlike runs every case of a table through the
// demo's real listener (serve) and through the dry run behind `gatehouse
// test` (Gateway.Evaluate), and requires the same decision: what answers
// (authorization server, STS, a route, or the gateway itself), the route,
// the stable code and the policy that refused. The status must match too,
// except where the dry run does not call what answers (an allowed
// request's upstream, a token service), whose dry-run status is 200.
func TestServeAndDryRunDecideAlike(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	d, err := startDemo(freeAddr(t), freeAddr(t), "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	tokens := map[string]string{}
	for _, c := range d.clients {
		tokens[c.env] = c.token
	}
	bearer := func(env string) map[string]string { return map[string]string{"Authorization": "Bearer " + tokens[env]} }
	lamp := `{"name":"Lamp","price":25.5,"currency":"EUR"}`
	jsonType := map[string]string{"Content-Type": "application/json"}
	with := func(a, b map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name, method, target, body string
		header                     map[string]string
	}{
		{"allowed read", "GET", "/product/p-1001", "", bearer("READER")},
		{"no token", "GET", "/product", "", nil},
		{"bad token", "GET", "/product", "", map[string]string{"Authorization": "Bearer not.a.jwt"}},
		{"insufficient scope", "POST", "/product", lamp, with(bearer("READER"), jsonType)},
		{"CEL rule", "POST", "/product", lamp, with(bearer("SALES"), jsonType)},
		{"SQL injection", "GET", "/product?q=1'%20OR%20'1'='1", "", bearer("READER")},
		{"no route", "GET", "/nowhere", "", nil},
		{"method not allowed", "PATCH", "/product", "", bearer("READER")},
		{"extension method", "PROPFIND", "/product", "", bearer("READER")},
		{"lower-case method", "get", "/product", "", bearer("READER")},
		{"CONNECT", "CONNECT", "/product", "", nil},
		{"dot-dot path", "GET", "/product/../admin", "", nil},
		{"path parameter", "GET", "/product;jsessionid=1/p-1001", "", bearer("READER")},
		{"encoded slash", "GET", "/product%2Fp-1001", "", bearer("READER")},
		{"token endpoint", "POST", "/oauth2/token", "grant_type=client_credentials", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"discovery", "GET", "/.well-known/openid-configuration", "", nil},
		{"STS WSDL or endpoint", "GET", "/sts", "", nil},
		{"SOAP without security", "POST", "/soap/products", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetProduct xmlns="urn:demo"/></s:Body></s:Envelope>`, map[string]string{"Content-Type": "text/xml", "SOAPAction": `"GetProduct"`}},
		{"method override stripped", "POST", "/product", lamp, with(with(bearer("WRITER"), jsonType), map[string]string{"X-HTTP-Method-Override": "DELETE"})},
	}
	client := &http.Client{Timeout: 60 * time.Second}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			served := serveDecision(t, client, d.base, d.g.AdminAddr().String(), c.method, c.target, c.body, c.header)
			// The dry run's request, built as `gatehouse test` builds it.
			r, err := caseRequest(testCase{Method: c.method, Path: c.target, Host: strings.TrimPrefix(d.base, "http://"), Headers: c.header, Body: c.body})
			if err != nil {
				t.Fatal(err)
			}
			dry := d.g.Evaluate(r)
			got := fmt.Sprintf("%s route=%q code=%q policy=%q", dry.Decision, dry.Route, dry.Code, dry.Policy)
			want := fmt.Sprintf("%s route=%q code=%q policy=%q", served.Decision, served.Route, served.Code, served.Policy)
			if got != want {
				t.Errorf("dry run: %s\nserve:   %s", got, want)
			}
			switch served.Decision {
			case "allow", "authserver", "sts":
				if dry.Status != http.StatusOK {
					t.Errorf("dry-run status %d for %s, want 200", dry.Status, served.Decision)
				}
			default:
				if dry.Status != served.Status {
					t.Errorf("status: dry run %d, serve %d", dry.Status, served.Status)
				}
			}
			t.Logf("%s %s: %s (%d)", c.method, c.target, want, served.Status)
		})
	}
}

// serveDecision sends a request to the real listener and reads back, by
// its request id, the decision the gateway recorded for it.
func serveDecision(t *testing.T, client *http.Client, base, adminAddr, method, target, body string, header map[string]string) admin.Decision {
	t.Helper()
	req, err := http.NewRequest(method, base+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if path, _, _ := strings.Cut(target, "?"); strings.ContainsAny(path, ";%") || strings.Contains(path, "/../") {
		req.URL.Opaque = path // sent as written, not cleaned by the client
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("%s %s: %d without X-Request-Id", method, target, resp.StatusCode)
	}
	var dec admin.Decision
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := client.Get("http://" + adminAddr + "/api/v1/decisions/" + id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &dec); err != nil {
				t.Fatalf("decision %s: %v\n%s", id, err, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision recorded for %s: %d %s", id, r.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if dec.Status != resp.StatusCode {
		t.Fatalf("recorded status %d, client got %d", dec.Status, resp.StatusCode)
	}
	return dec
}
