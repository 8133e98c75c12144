package waf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/textproto"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/corazawaf/coraza/v3"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// The OWASP CRS regression suite (go-ftw YAML) for the CRS version
// embedded: github.com/corazawaf/coraza-coreruleset/v4 ships it as the
// tests package, so the corpus is always the one of the rules we run.

// ftwFile is one go-ftw test file.
type ftwFile struct {
	RuleID int `yaml:"rule_id"`
	Tests  []struct {
		TestID int `yaml:"test_id"`
		Stages []struct {
			Input ftwInput `yaml:"input"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

// ftwInput is a stage's request.
type ftwInput struct {
	Method         string            `yaml:"method"`
	URI            string            `yaml:"uri"`
	Version        string            `yaml:"version"`
	Headers        map[string]string `yaml:"headers"`
	Data           string            `yaml:"data"`
	Autocomplete   *bool             `yaml:"autocomplete_headers"`
	EncodedRequest string            `yaml:"encoded_request"`
}

// crsCase is one request of the regression suite, ready to feed.
type crsCase struct {
	name                 string
	method, uri, version string
	headers              [][2]string
	body                 []byte
}

// crsRegression reads every request stage of the suite's REQUEST-* files
// (the RESPONSE-* ones test response rules, which the gateway never runs).
func crsRegression(t testing.TB) []crsCase {
	t.Helper()
	var out []crsCase
	err := fs.WalkDir(crstests.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || !strings.HasPrefix(path, "REQUEST-") {
			return err
		}
		b, err := fs.ReadFile(crstests.FS, path)
		if err != nil {
			return err
		}
		var f ftwFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, tc := range f.Tests {
			for i, st := range tc.Stages {
				c, err := st.Input.crsCase()
				if err != nil {
					return fmt.Errorf("%s test %d: %w", path, tc.TestID, err)
				}
				c.name = fmt.Sprintf("%d-%d/%d", f.RuleID, tc.TestID, i)
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crsCase turns a stage into a request as go-ftw sends it: defaults for
// method, URI and version; with autocompletion (the default) a
// Content-Length for the data and "Connection: close".
func (in ftwInput) crsCase() (crsCase, error) {
	if in.EncodedRequest != "" {
		return parseRaw(in.EncodedRequest)
	}
	c := crsCase{method: in.Method, uri: in.URI, version: in.Version, body: []byte(in.Data)}
	if c.method == "" {
		c.method = "GET"
	}
	if c.uri == "" {
		c.uri = "/"
	}
	if c.version == "" {
		c.version = "HTTP/1.1"
	}
	names := make([]string, 0, len(in.Headers))
	for k := range in.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	has := map[string]bool{}
	for _, k := range names {
		c.headers = append(c.headers, [2]string{k, in.Headers[k]})
		has[strings.ToLower(k)] = true
	}
	if in.Autocomplete == nil || *in.Autocomplete {
		if len(c.body) > 0 && !has["content-length"] {
			c.headers = append(c.headers, [2]string{"Content-Length", strconv.Itoa(len(c.body))})
		}
		if !has["connection"] {
			c.headers = append(c.headers, [2]string{"Connection", "close"})
		}
	}
	return c, nil
}

// parseRaw reads a base64 raw HTTP request: request line, headers, and
// the rest as the body (as sent, chunked framing included).
func parseRaw(enc string) (crsCase, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(enc, "\n", ""))
	if err != nil {
		return crsCase{}, err
	}
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	line, err := tp.ReadLine()
	if err != nil {
		return crsCase{}, err
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		return crsCase{}, fmt.Errorf("request line %q", line)
	}
	c := crsCase{method: f[0], uri: f[1], version: f[2], body: body}
	for {
		l, err := tp.ReadLine()
		if err != nil || l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		c.headers = append(c.headers, [2]string{k, strings.TrimSpace(v)})
	}
	return c, nil
}

// run feeds c to a transaction of eng through the request phases and
// returns the ids of the rules that matched (the gate's own left out),
// sorted.
func (c *crsCase) run(eng coraza.WAF) []int {
	tx := eng.NewTransaction()
	defer tx.Close()
	ids := func() []int {
		var ids []int
		for _, m := range tx.MatchedRules() {
			if id := m.Rule().ID(); id != gatePhase1ID && id != gatePhase2ID {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	tx.ProcessConnection("127.0.0.1", 40000, "127.0.0.1", 80)
	tx.ProcessURI(c.uri, c.method, c.version)
	for _, h := range c.headers {
		tx.AddRequestHeader(h[0], h[1])
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return ids()
	}
	if len(c.body) > 0 {
		if it, _, err := tx.WriteRequestBody(c.body); it != nil || err != nil {
			return ids()
		}
	}
	_, _ = tx.ProcessRequestBody()
	return ids()
}

// crsEngines are the rule sets the regression suite compares: stock
// Coraza + CRS (StockDirectives, unmodified), the same directives through
// the gated engine, and the waf policy's default rule set with and
// without the gate.
type crsEngines struct {
	stock, stockGated, ours, oursUngated coraza.WAF
}

func newCRSEngines(t testing.TB) crsEngines {
	t.Helper()
	var e crsEngines
	var err error
	if e.stock, err = newEngine(StockDirectives, engineOpts{}); err != nil {
		t.Fatal(err)
	}
	if e.stockGated, err = newEngine(StockDirectives, engineOpts{fast: true, gate: true}); err != nil {
		t.Fatal(err)
	}
	w := oursWAF(t, "")
	e.ours = w.engine
	e.oursUngated = ungated(t, "").engine
	return e
}

// TestCRSRegressionGatedMatchesStock runs every request of the CRS
// regression suite through stock Coraza + CRS and through the gated
// engine built from the same directives: on every one, the same rules
// must match. Likewise the waf policy's defaults with and without the
// gate. This is what guards the gate's soundness (gate.go) on the CRS's
// own attack corpus, paranoia levels 1 to 4 included.
func TestCRSRegressionGatedMatchesStock(t *testing.T) {
	cases := crsRegression(t)
	if len(cases) < 4000 {
		t.Fatalf("got %d regression requests, want at least 4000", len(cases))
	}
	e := newCRSEngines(t)
	// Under the race detector (10x slower) every tenth stage: the race
	// run is about concurrency, the plain run checks them all.
	step := 1
	if raceEnabled {
		step = 10
	}
	var matched, oursMatched int
	for i := 0; i < len(cases); i += step {
		c := &cases[i]
		want, got := c.run(e.stock), c.run(e.stockGated)
		if !slices.Equal(got, want) {
			t.Errorf("%s: gated matched %v, stock %v", c.name, got, want)
		}
		if len(want) > 0 {
			matched++
		}
		want, got = c.run(e.oursUngated), c.run(e.ours)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the policy's defaults matched %v gated, %v ungated", c.name, got, want)
		}
		if len(want) > 0 {
			oursMatched++
		}
	}
	t.Logf("%d regression requests; some rule matched on %d with stock directives, %d with the policy's defaults", len(cases), matched, oursMatched)
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCRSRegression runs the whole CRS regression suite (4,500+
// requests) per iteration through each engine; cpu-ms/suite is the
// process CPU time per pass (GC included). Compare stock with
// stock_gated (same rules) and ours (the policy's defaults).
func BenchmarkCRSRegression(b *testing.B) {
	cases := crsRegression(b)
	e := newCRSEngines(b)
	for _, c := range []struct {
		name string
		eng  coraza.WAF
	}{{"stock", e.stock}, {"stock_gated", e.stockGated}, {"ours", e.ours}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			n := 0
			for b.Loop() {
				for i := range cases {
					cases[i].run(c.eng)
				}
				n++
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(n), "cpu-ms/suite")
		})
	}
	// The policy's defaults as the gateway runs them (WAF.Apply, the
	// quiet path included); a stage net/http would not parse runs as in
	// "ours".
	w := oursWAF(b, "")
	b.Run("ours_apply", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		n := 0
		for b.Loop() {
			for i := range cases {
				if r := crsRequest(&cases[i]); r != nil {
					_ = w.Apply(context.Background(), policytest.Exchange(r))
				} else {
					cases[i].run(e.ours)
				}
			}
			n++
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(n), "cpu-ms/suite")
	})
}

// BenchmarkCRSRegressionAlternating runs the suite through stock and
// through the policy's defaults (the engine, as "ours") in alternating
// blocks of 50 stages, so that a shared machine's load falls on both
// alike, and reports each one's process CPU per pass and their ratio.
// GC work lands in whichever block runs when it does: it is shared by
// time, not by who allocated, which flatters stock a little.
func BenchmarkCRSRegressionAlternating(b *testing.B) {
	cases := crsRegression(b)
	e := newCRSEngines(b)
	var stock, ours time.Duration
	n := 0
	for b.Loop() {
		for i := 0; i < len(cases); i += 50 {
			end := min(i+50, len(cases))
			for k, eng := range []coraza.WAF{e.stock, e.ours} {
				if n%2 == 1 {
					eng = []coraza.WAF{e.ours, e.stock}[k]
				}
				start := cpuTime()
				for j := i; j < end; j++ {
					cases[j].run(eng)
				}
				if eng == e.stock {
					stock += cpuTime() - start
				} else {
					ours += cpuTime() - start
				}
			}
		}
		n++
	}
	b.ReportMetric(float64(stock)/float64(time.Millisecond)/float64(n), "stock-cpu-ms/suite")
	b.ReportMetric(float64(ours)/float64(time.Millisecond)/float64(n), "ours-cpu-ms/suite")
	b.ReportMetric(float64(stock)/float64(ours), "stock/ours")
}
