package h2spectest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/summerwind/h2spec/config"
	"github.com/summerwind/h2spec/generic"
	"github.com/summerwind/h2spec/hpack"
	"github.com/summerwind/h2spec/http2"
	"github.com/summerwind/h2spec/spec"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gatewaytest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// knownGoFailures are the h2spec cases (group id/sequence number, as
// h2spec's -j report and its section filter name them) that the gateway
// fails because of Go's HTTP/2 server (net/http's bundled copy of
// golang.org/x/net/http2), not because of anything Gatehouse does, each
// with the Go issue that tracks it. docs/operations.md ("HTTP/2
// conformance") lists the same cases. TestH2Spec fails when the set of
// failures differs from this one either way: a new failure is a
// regression to fix (or, if it is Go's, to add here with its issue), and
// a case that passes again (a Go upgrade fixed it) must leave this list
// and the doc.
var knownGoFailures = map[string]string{
	// Go's server hangs up (GOAWAY PROTOCOL_ERROR) on a SETTINGS frame
	// that names a setting twice, which RFC 9113 6.5.3 allows ("processed
	// in the order they appear"); its own comment: "This isn't actually
	// in the spec, but hang up on suspiciously large settings frames or
	// those with duplicate entries".
	"http2/6.5.3/1": "golang/go#56760",
	// A request with a connection-specific field (Connection, Keep-Alive,
	// Proxy-Connection, Transfer-Encoding, Upgrade) or a TE other than
	// "trailers" is malformed (RFC 9113 8.2.2) and must be reset with
	// PROTOCOL_ERROR; Go's server answers 400 itself instead, before the
	// gateway's handler runs. Nothing reaches the gateway or an upstream.
	"http2/8.1.2.2/1": "golang/go#26321",
	"http2/8.1.2.2/2": "golang/go#26321",
}

// knownH2CFailures are the cases that fail on an h2c listener only, by
// design rather than by a bug: an h2c listener also speaks HTTP/1.1 on the
// same port (http.Protocols), so bytes that are not the HTTP/2 preface are
// read as an HTTP/1.1 request, answered "400 Bad Request" and the
// connection closed; h2spec wants the close without the answer.
var knownH2CFailures = map[string]string{
	"http2/3.5/2": "h2c shares its port with HTTP/1.1",
}

// caseTimeout is how long h2spec waits for each expected frame or close:
// its command's default is 2 s (-o 2).
const caseTimeout = 2 * time.Second

// workers is how many h2spec cases run at once: each is one connection
// that mostly waits, so a few at a time keep the run short without
// loading a shared 2-core machine.
const workers = 4

// TestH2Spec runs the h2spec suites (generic, http2 and hpack, with the
// strict cases: h2spec -S) against a real
// gateway proxying to a real upstream, on its TLS listener (ALPN h2) and
// on an h2c listener (prior knowledge), and requires that exactly the
// cases of knownGoFailures fail on each.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec runs about 150 connections a listener; skipped in -short")
	}
	// The upstream reads the whole request body and answers with a body
	// long enough for the flow-control cases (which shrink the window to
	// 1 byte and wait for a 1-byte DATA frame).
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, strings.Repeat("h2spec response body\n", 64))
	}))
	t.Cleanup(up.Close)

	dir := t.TempDir()
	ca := tlstest.NewCA(t, "h2spec test CA")
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	// The route has the policies that shape every response (security
	// headers, a removed header, a body limit), so that what the gateway
	// itself adds is on the wire h2spec reads.
	g := gatewaytest.Start(t, `
listeners:
  - name: main
    address: 127.0.0.1:0
    tls: {cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
  - name: clear
    address: 127.0.0.1:0
    h2c: true
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: root
    match: {path: /, methods: [GET, POST]}
    upstream: {url: "`+up.URL+`"}
    policies:
      - size_limit: {body: 64KiB}
      - headers:
          response: {remove: [Server]}
          security:
            content_type_options: true
            frame_options: DENY
            referrer_policy: no-referrer
  # The same upstream behind the policies that read request bodies and
  # hold or rewrite the response (the WAF, dlp's masking): they must not
  # change how the gateway speaks HTTP/2 either.
  - name: guarded
    match: {path: /guarded, methods: [GET, POST]}
    upstream: {url: "`+up.URL+`"}
    policies:
      - size_limit: {body: 64KiB}
      - waf: {paranoia_level: 1, mode: block}
      - dlp: {credit_cards: {action: mask}}
      - headers:
          security: {content_type_options: true}
`, gateway.Options{BaseDir: dir, Registry: builtin.Registry()})

	for _, l := range []struct {
		name, listener, path string
		tls                  bool
		known                map[string]string
	}{
		{"tls", "main", "/", true, knownGoFailures},
		{"h2c", "clear", "/", false, merge(knownGoFailures, knownH2CFailures)},
		{"tls guarded", "main", "/guarded", true, knownGoFailures},
	} {
		t.Run(l.name, func(t *testing.T) {
			_, port, err := net.SplitHostPort(g.Addr(l.listener).String())
			if err != nil {
				t.Fatal(err)
			}
			p, _ := strconv.Atoi(port)
			// The TLS handshake is not what is under test (the CA is a
			// throwaway one), hence Insecure.
			cfg := &config.Config{
				Host:         "127.0.0.1",
				Port:         p,
				Path:         l.path,
				Timeout:      caseTimeout,
				MaxHeaderLen: 4000, // h2spec's command default
				TLS:          l.tls,
				Insecure:     true,
				Strict:       true,
			}
			// A request through the gateway first, so that a broken setup
			// is reported as such and not as 150 h2spec failures.
			sanity(t, cfg)
			checkSuites(t, cfg, l.known)
		})
	}
}

// checkSuites runs the suites against cfg's listener and compares the
// failures with known (case id to the reason).
func checkSuites(t *testing.T, cfg *config.Config, known map[string]string) {
	t.Helper()
	var cases []h2case
	for _, tg := range []*spec.TestGroup{generic.Spec(), http2.Spec(), hpack.Spec()} {
		cases = collect(tg, cases)
	}
	if len(cases) < 100 {
		t.Fatalf("h2spec has %d non-strict cases; the suites did not load", len(cases))
	}
	results := runAll(cfg, cases)

	// A case whose outcome disagrees with the list is run twice more, one
	// at a time, and counts as disagreeing only if it does so every time:
	// a 2 s wait can be missed on a loaded machine.
	var unexpected, fixed []string
	for i, c := range cases {
		_, isKnown := known[c.id]
		err := results[i]
		for try := 0; try < 2 && (err != nil) != isKnown; try++ {
			err = runCase(cfg, c)
		}
		switch {
		case err != nil && !isKnown:
			unexpected = append(unexpected, fmt.Sprintf("%s %s\n    %s\n    %s", c.id, c.tc.Desc, c.tc.Requirement, indent(err.Error())))
		case err == nil && isKnown:
			fixed = append(fixed, fmt.Sprintf("%s %s (%s)", c.id, c.tc.Desc, known[c.id]))
		}
	}
	for id := range known {
		if !hasCase(cases, id) {
			t.Errorf("the known failures name %s, which h2spec does not have", id)
		}
	}
	if len(unexpected) > 0 {
		t.Errorf("%d h2spec cases fail that are not known failures of Go's HTTP/2 server (fix them, or list Go's with their issue in knownGoFailures and docs/operations.md):\n%s",
			len(unexpected), strings.Join(unexpected, "\n"))
	}
	if len(fixed) > 0 {
		t.Errorf("%d known failures now pass: remove them from knownGoFailures and docs/operations.md:\n%s",
			len(fixed), strings.Join(fixed, "\n"))
	}
	t.Logf("%d h2spec cases, %d known failures", len(cases), len(known))
}

// An h2case is one h2spec test case and its id ("http2/6.9.1/2").
type h2case struct {
	id string
	tc *spec.TestCase
}

// collect appends tg's cases and those of its subgroups, the strict ones
// included (h2spec keeps a case marked strict in a group that is not in
// Tests, and a strict group's cases in StrictTests), with the ids h2spec
// gives them (its group id, then the case's 1-based position in the
// group, StrictTests after Tests).
func collect(tg *spec.TestGroup, out []h2case) []h2case {
	for i, tc := range append(tg.Tests[:len(tg.Tests):len(tg.Tests)], tg.StrictTests...) {
		out = append(out, h2case{id: tg.ID() + "/" + strconv.Itoa(i+1), tc: tc})
	}
	for _, sub := range tg.Groups {
		out = collect(sub, out)
	}
	return out
}

func hasCase(cases []h2case, id string) bool {
	for _, c := range cases {
		if c.id == id {
			return true
		}
	}
	return false
}

// runAll runs every case, workers at a time, and returns each one's
// error (nil: passed; a skipped case counts as passed).
func runAll(cfg *config.Config, cases []h2case) []error {
	results := make([]error, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				results[i] = runCase(cfg, cases[i])
			}
		})
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// runCase runs one case on a new connection, as h2spec's command does,
// but returns a dial error instead of exiting the process. Every read of
// a case is bounded by cfg.Timeout; the connection's deadline bounds the
// case as a whole in case one is not.
func runCase(cfg *config.Config, c h2case) error {
	conn, err := spec.Dial(cfg)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * cfg.Timeout))
	err = c.tc.Run(cfg, conn)
	if err == spec.ErrSkipped {
		return nil
	}
	return err
}

// sanity makes one HTTP/2 request through the gateway with Go's client
// (over TLS, or h2c with prior knowledge) and checks the headers the
// route's policies set.
func sanity(t *testing.T, cfg *config.Config) {
	t.Helper()
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc, Protocols: new(http.Protocols)}
	if cfg.TLS {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("%s://%s%s", cfg.Scheme(), cfg.Addr(), cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("GET / through the gateway: %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("GET / through the gateway: the route's headers are missing: %v", resp.Header)
	}
}

func merge(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func indent(s string) string {
	return strings.ReplaceAll(s, "\n", "\n    ")
}
