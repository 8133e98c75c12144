package dlp

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// maskingConfigs are the configurations the masking is compared under:
// every detector (the custom one never rewritten, so its own scan is its
// reference), cards with and without the network check.
var maskingConfigs = []struct {
	name, yaml string
	iin        bool
}{
	{"all", benchAll + "custom:\n  - {name: employee, pattern: 'EMP-[0-9]{6}'}\n", false},
	{"all/iin", strings.Replace(benchAll, "credit_cards: {}", "credit_cards: {iin: true}", 1), true},
	{"cards", "credit_cards: {}", false},
	{"national_ids", "national_ids: {}\nibans: {}", false},
}

// refScans are the reference detectors (detect_ref_test.go) by detector
// name.
func refScans(iin bool) map[string]scanFunc {
	return map[string]scanFunc{
		"credit_card":    refScanCards(iin),
		"iban":           refScanIBANs,
		"us_ssn":         refScanSSNs,
		"uk_nino":        refScanNINOs,
		"private_key":    refScanPrivateKeys(pemMaxLen),
		"jwt":            refScanJWTs,
		"aws_access_key": refScanKeys(awsFormats),
		"github_token":   refScanKeys(githubFormats),
		"slack_token":    refScanKeys(slackFormats),
	}
}

// refPolicy is d with the reference detectors in place of the fast ones:
// the policy as it was before them.
func refPolicy(t *testing.T, d *DLP, iin bool) *DLP {
	t.Helper()
	s := *d.s
	s.dets = make([]*detector, len(d.s.dets))
	refs := refScans(iin)
	for i, det := range d.s.dets {
		c := *det
		if ref, ok := refs[det.name]; ok {
			c.scan = ref
		} else if det.name != "employee" {
			t.Fatalf("detector %s has no reference", det.name)
		}
		s.dets[i] = &c
	}
	return newDLP(&s, policytest.Env())
}

// refMask masks body as a policy masks a body shorter than its window
// (scanned whole at the end): each detector in turn, in the reference
// version, over the body after a context byte, masking each match as it
// is found.
func refMask(d *DLP, refs map[string]scanFunc, body string) string {
	b := []byte(" " + body)
	for _, det := range d.s.dets {
		scan := refs[det.name]
		if scan == nil {
			scan = det.scan
		}
		scan(b, 1, len(b), func(s, e int) { det.mask(b, s, e) })
	}
	return string(b[1:])
}

// maskingBody is a body of random fragments (detect_diff_test.go) and
// UTF-8, between n and about n+100 bytes long.
func maskingBody(rng *rand.Rand, n int) string {
	utf8 := []string{"é", "日本語", "💳", "ü4111", "€ ", "\u00a0"}
	var b strings.Builder
	for b.Len() < n {
		switch rng.IntN(6) {
		case 0:
			b.WriteString(utf8[rng.IntN(len(utf8))])
		case 1:
			b.WriteString(products[:rng.IntN(100)])
		default:
			b.WriteString(fragments[rng.IntN(len(fragments))])
		}
	}
	return b.String()
}

// randomChunks cuts s at random places, edges included.
func randomChunks(rng *rand.Rand, s string) []string {
	var out []string
	for len(s) > 0 {
		n := min(len(s), 1+rng.IntN(max(1, len(s)/2)))
		if rng.IntN(4) == 0 {
			n = min(len(s), 1+rng.IntN(8)) // small writes: matches split across them
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// The policy masks exactly as it did with the reference detectors:
// a body is masked as the reference masks it (refMask) when it is
// shorter than the window, in one write or many; and larger bodies,
// whose windows cut them where a write ends, are masked as the policy
// with the reference detectors masks them, byte for byte, written in the
// same pieces. Header fields too.
func TestMaskingMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, mc := range maskingConfigs {
		t.Run(mc.name, func(t *testing.T) {
			d := mustNew(t, mc.yaml)
			ref := refPolicy(t, d, mc.iin)
			refs := refScans(mc.iin)
			// Bodies up to about 1KB: the reference masking when within
			// the window (scanned whole at the end), and the policy's
			// with the reference detectors, whole and in pieces.
			for range 1500 {
				body := maskingBody(rng, rng.IntN(1200))
				for _, chunks := range [][]string{{body}, randomChunks(rng, body)} {
					got := throughPolicy(t, d, 200, nil, chunks...)
					want := throughPolicy(t, ref, 200, nil, chunks...)
					if len(body) < d.window {
						want.body = refMask(d, refs, body)
					}
					if got.status != 200 || got.body != want.body {
						t.Fatalf("body %q in %d pieces:\ngot  %d %q\nwant 200 %q", body, len(chunks), got.status, got.body, want.body)
					}
				}
			}
			// Bodies beyond the window, findings around its edges:
			// as the policy with the reference detectors masks them.
			for range 40 {
				body := maskingBody(rng, 2*d.window+rng.IntN(d.window))
				for _, at := range []int{d.window, 2 * d.window} {
					at = min(len(body), max(0, at+rng.IntN(80)-40))
					f := fragments[rng.IntN(40)]
					body = body[:at] + f + body[at:]
				}
				chunks := randomChunks(rng, body)
				want := throughPolicy(t, ref, 200, nil, chunks...)
				got := throughPolicy(t, d, 200, nil, chunks...)
				if got.status != want.status || got.body != want.body {
					t.Fatalf("body of %d bytes in %d pieces: got %d, the reference %d; first difference at %d",
						len(body), len(chunks), got.status, want.status, firstDiff(got.body, want.body))
				}
			}
			// Header fields.
			for range 300 {
				v := maskingBody(rng, rng.IntN(120))
				v = strings.Map(func(r rune) rune { // a field value holds no line breaks
					if r == '\n' || r == '\r' || r == 0 {
						return ' '
					}
					return r
				}, v)
				h := http.Header{"Content-Type": {"application/json"}, "X-Debug": {v, "card " + v}}
				got := throughPolicy(t, d, 200, h, "{}")
				wants := []string{refMask(d, refs, v), refMask(d, refs, "card "+v)}
				if g := got.header["X-Debug"]; len(g) != 2 || g[0] != wants[0] || g[1] != wants[1] {
					t.Fatalf("X-Debug %q: got %q, want %q", v, g, wants)
				}
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A blocking detector's finding in a header field refuses the response,
// as one in the body does, and a clean response passes.
func TestHeaderFieldBlocks(t *testing.T) {
	const yaml = "credit_cards: {action: block}\nibans: {}"
	h := http.Header{"Content-Type": {"application/json"}, "X-Debug": {"iban DE89370400440532013000"}, "X-Card": {"4111 1111 1111 1111"}}
	got := through(t, yaml, 200, h, `{"ok":true}`)
	if got.status != http.StatusBadGateway || !strings.Contains(got.body, CodeBlocked) || strings.Contains(got.body, "1111") {
		t.Errorf("card in a field: got %d %s", got.status, got.body)
	}
	h = http.Header{"Content-Type": {"application/json"}, "X-Debug": {"iban DE89370400440532013000"}}
	got = through(t, yaml, 200, h, `{"ok":true}`)
	if got.status != 200 || got.header.Get("X-Debug") != "iban ******************3000" || got.body != `{"ok":true}` {
		t.Errorf("iban in a field: got %d %v %s", got.status, got.header, got.body)
	}
}
