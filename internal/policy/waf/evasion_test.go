package waf

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The gate (gate.go), its automata (dfa.go) and the quiet path (quiet.go)
// skip rules they prove cannot match. A proof that is wrong on some
// encoding is a way past the WAF: the attacker's payload, encoded so that
// the proof misreads it, reaches the upstream while stock Coraza would
// have refused it. The CRS regression suite checks the proofs on the
// CRS's own payloads; these tests check them on those payloads re-encoded
// the ways evasions do, and on whatever the fuzzer makes of them.

// evade re-encodes s with one evasion chosen by rng, in the shapes the
// gate's reasoning is about: percent-encoding (single, double, %u, bad
// hex, mixed case), '+', bytes past ASCII (valid and invalid UTF-8,
// overlong forms, look-alike letters), case, backslash and HTML escapes,
// comments, NUL, and whitespace that transformations remove or compress.
func evade(rng *rand.Rand, s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	j := rng.IntN(len(b))
	c := b[j]
	var rep string
	switch rng.IntN(18) {
	case 0: // percent-encode every byte of a span
		k := min(len(b), j+1+rng.IntN(6))
		var sb strings.Builder
		for _, x := range b[j:k] {
			fmt.Fprintf(&sb, "%%%02X", x)
		}
		return string(b[:j]) + sb.String() + string(b[k:])
	case 1:
		rep = fmt.Sprintf("%%%02x", c)
	case 2: // double encoding
		rep = fmt.Sprintf("%%25%02X", c)
	case 3: // IIS %u
		rep = fmt.Sprintf("%%u%04x", c)
	case 4: // %u of a full-width form, which some decoders fold to ASCII
		if c > ' ' && c < 0x7f {
			rep = fmt.Sprintf("%%uff%02x", c-0x20)
		} else {
			rep = "%uff0f"
		}
	case 5: // broken escapes
		rep = []string{"%", "%g", "%1", "%%", "%u12", "%uzzzz", "%%32%65"}[rng.IntN(7)] + string(c)
	case 6:
		if c == ' ' {
			rep = "+"
		} else {
			rep = string(c) + "+"
		}
	case 7: // bytes past ASCII: valid, invalid, overlong, and look-alikes
		rep = string(c) + []string{"\u00e9", "\u212a", "\u017f", "\xc0\xaf", "\xc0\xae", "\xe0\x80\xaf", "\xff", "\xed\xa0\x80", "\u2028", "\uff1c", "\u0130"}[rng.IntN(11)]
	case 8:
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			rep = string(c ^ 0x20)
		} else {
			rep = string(c)
		}
	case 9: // backslash escapes (cmdLine, jsDecode, cssDecode)
		rep = []string{fmt.Sprintf(`\x%02x`, c), fmt.Sprintf(`\u%04x`, c), fmt.Sprintf(`\%03o`, c), `\` + string(c), fmt.Sprintf(`\%x `, c)}[rng.IntN(5)]
	case 10: // HTML entities
		rep = []string{fmt.Sprintf("&#%d;", c), fmt.Sprintf("&#x%x;", c), fmt.Sprintf("&#X%X", c), "&lt;", "&quot;", "&amp;" + string(c)}[rng.IntN(6)]
	case 11: // comments that SQL and C decoders drop
		rep = string(c) + []string{"/**/", "/*!", "--", "#", "<!--", "-->"}[rng.IntN(6)]
	case 12:
		rep = string(c) + []string{"\x00", "%00", "\x0b", "\t", "\r\n", "  ", "\u00a0"}[rng.IntN(7)]
	case 13: // shell evasion fillers the CRS's command rules allow
		rep = string(c) + []string{`'`, `"`, `\`, "$@", "${IFS}", "``", "$()"}[rng.IntN(7)]
	case 14: // a whole-value transformation
		switch rng.IntN(3) {
		case 0:
			return url.QueryEscape(s)
		case 1:
			return url.PathEscape(s)
		default:
			return strings.ToUpper(s)
		}
	case 15: // cut the value (a decoder's state at the end)
		return s[:j]
	case 16: // repeat a span (multiMatch intermediates, overlapping literals)
		k := min(len(b), j+1+rng.IntN(8))
		return s[:k] + s[j:]
	default: // a path trick
		rep = string(c) + []string{"/./", "//", "/../", `\..\`, ";", "?"}[rng.IntN(6)]
	}
	return string(b[:j]) + rep + string(b[j+1:])
}

// evaded is c with one of its parts re-encoded by 1-3 evasions: the URI's
// query (or path), a header's value, or the body.
func evaded(rng *rand.Rand, c crsCase) crsCase {
	c.headers = slices.Clone(c.headers)
	n := 1 + rng.IntN(3)
	mut := func(s string) string {
		for range n {
			s = evade(rng, s)
		}
		return s
	}
	switch where := rng.IntN(4); {
	case where == 0 && len(c.body) > 0:
		c.body = []byte(mut(string(c.body)))
		for i, h := range c.headers {
			if strings.EqualFold(h[0], "Content-Length") {
				c.headers[i][1] = strconv.Itoa(len(c.body))
			}
		}
	case where == 1 && len(c.headers) > 0:
		i := rng.IntN(len(c.headers))
		if !strings.EqualFold(c.headers[i][0], "Content-Length") {
			c.headers[i][1] = mut(c.headers[i][1])
			break
		}
		fallthrough
	default:
		path, query, ok := strings.Cut(c.uri, "?")
		if ok && (query != "" || rng.IntN(2) == 0) {
			c.uri = path + "?" + mut(query)
		} else {
			c.uri = mut(path)
		}
	}
	return c
}

// TestEvasionsGatedMatchStock: the CRS regression suite's requests,
// re-encoded, through stock Coraza + CRS and through the gated engine
// built from the same directives (and the policy's defaults with and
// without the gate): on every one, the same rules must match. Where
// WAF.Apply's quiet path proves a request quiet, running every rule must
// neither log nor refuse it.
func TestEvasionsGatedMatchStock(t *testing.T) {
	cases := crsRegression(t)
	e := newCRSEngines(t)
	w := oursWAF(t, "")
	n := 3000
	if raceEnabled || testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewPCG(0x6761, 0x7465))
	var matched, quiet int
	for i := range n {
		c := evaded(rng, cases[rng.IntN(len(cases))])
		c.name = fmt.Sprintf("evasion %d of %s", i, c.name)
		// Attack rules: 930xxx-944xxx (LFI to session fixation), past
		// each file's setup rules (x0xx: paranoia skips, 941010).
		if slices.ContainsFunc(checkGatedMatchesStock(t, e, w, &c), func(id int) bool { return id >= 930000 && id < 945000 && id%1000 >= 100 }) {
			matched++
		}
		if r := crsRequest(&c); r != nil && proved(w, r) {
			quiet++
		}
	}
	t.Logf("%d re-encoded requests: an attack rule matched on %d, %d proved quiet", n, matched, quiet)
	if matched*5 < n {
		t.Errorf("rules matched on %d of %d re-encoded attacks: the mutations no longer keep the payloads", matched, n)
	}
}

// checkGatedMatchesStock runs c through every engine pair and WAF.Apply's
// quiet proof, and reports the rules stock matched.
func checkGatedMatchesStock(t *testing.T, e crsEngines, w *WAF, c *crsCase) []int {
	t.Helper()
	want, got := c.run(e.stock), c.run(e.stockGated)
	if !slices.Equal(got, want) {
		t.Errorf("%s: gated matched %v, stock %v\n%s", c.name, got, want, c.dump())
	}
	if u, g := c.run(e.oursUngated), c.run(e.ours); !slices.Equal(g, u) {
		t.Errorf("%s: the policy's defaults matched %v gated, %v ungated\n%s", c.name, g, u, c.dump())
	}
	if r := crsRequest(c); r != nil && proved(w, r) && outcome(t, w, crsRequest(c)) {
		t.Errorf("%s: proved quiet, but the rules log or act on it\n%s", c.name, c.dump())
	}
	return want
}

// dump shows a request as Go strings, to paste into a test.
func (c *crsCase) dump() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  %s %q %s\n", c.method, c.uri, c.version)
	for _, h := range c.headers {
		fmt.Fprintf(&sb, "  %s: %q\n", h[0], h[1])
	}
	if len(c.body) > 0 {
		fmt.Fprintf(&sb, "  body %q\n", c.body)
	}
	return sb.String()
}

// FuzzGatedMatchesStock is TestEvasionsGatedMatchStock with the fuzzer
// choosing the bytes: a query, a header value and a form body, seeded
// with payloads of the regression suite.
//
//	go test -run XXX -fuzz FuzzGatedMatchesStock -fuzztime 5m ./internal/policy/waf/
func FuzzGatedMatchesStock(f *testing.F) {
	cases := crsRegression(f)
	// Sixteen seeds, so that the baseline (a third of a second a seed
	// with coverage on) fits in make test's short fuzz pass; the test
	// above covers the suite.
	for i := 0; i < len(cases); i += len(cases) / 16 {
		c := cases[i]
		_, q, _ := strings.Cut(c.uri, "?")
		var hv string
		for _, h := range c.headers {
			if !strings.EqualFold(h[0], "Host") && !strings.EqualFold(h[0], "Content-Length") && !strings.EqualFold(h[0], "Connection") {
				hv = h[1]
				break
			}
		}
		f.Add(q, hv, string(c.body))
	}
	e := newCRSEngines(f)
	w := oursWAF(f, "")
	f.Fuzz(func(t *testing.T, query, header, body string) {
		// Only what net/http would deliver: a header value without
		// line breaks or NUL (its server refuses them).
		if strings.ContainsAny(header, "\r\n\x00") {
			return
		}
		c := crsCase{name: "fuzz", method: "POST", uri: "/api/search?" + query, version: "HTTP/1.1",
			headers: [][2]string{{"Host", "localhost"}, {"User-Agent", "Mozilla/5.0"}, {"Accept", "*/*"},
				{"X-Note", header}, {"Content-Type", "application/x-www-form-urlencoded"}},
			body: []byte(body)}
		if len(body) > 0 {
			c.headers = append(c.headers, [2]string{"Content-Length", strconv.Itoa(len(body))})
		}
		checkGatedMatchesStock(t, e, w, &c)
	})
}
