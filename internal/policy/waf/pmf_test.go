package waf

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
)

// pmfEngines returns, for the CRS data file name, a rule set using
// Coraza's @pmFromFile and one using ours: rule 1 captures (its message
// is TX.0 to TX.9), rule 2 does not.
func pmfEngines(t *testing.T, name string, data []byte) (stock, ours coraza.WAF) {
	t.Helper()
	register()
	build := func(op string) coraza.WAF {
		rules := fmt.Sprintf(`SecRule ARGS_GET:v "@%[1]s %[2]s" "id:1,phase:1,pass,log,capture,msg:'%%{tx.0}|%%{tx.1}|%%{tx.2}|%%{tx.3}|%%{tx.4}|%%{tx.5}|%%{tx.6}|%%{tx.7}|%%{tx.8}|%%{tx.9}'"
SecRule ARGS_GET:v "@%[1]s %[2]s" "id:2,phase:1,pass,log,msg:'match'"
`, op, name)
		root := fstest.MapFS{"r/rules.conf": {Data: []byte(rules)}, "r/" + name: {Data: data}}
		w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(root).
			WithDirectives("SecRuleEngine DetectionOnly\nInclude r/rules.conf"))
		if err != nil {
			t.Fatalf("%s with @%s: %v", name, op, err)
		}
		return w
	}
	return build("pmFromFile"), build(pmfOperatorName)
}

// pmfOutcome is what the two rules said about v: which matched, with
// rule 1's captures.
func pmfOutcome(w coraza.WAF, v string) string {
	tx := w.NewTransaction()
	defer tx.Close()
	tx.AddGetRequestArgument("v", v)
	tx.ProcessRequestHeaders()
	var b strings.Builder
	for _, m := range tx.MatchedRules() {
		fmt.Fprintf(&b, "%d:%q ", m.Rule().ID(), m.Message())
	}
	return b.String()
}

// pmfValue builds a value around the file's keywords: some keywords (case
// flipped at random, cut short, run together so that they overlap), in
// random ASCII, non-ASCII (é, KELVIN SIGN, LONG S: not ASCII letters, so
// never equal to k or s here) and invalid bytes.
func pmfValue(r *rand.Rand, keys []string) string {
	junk := []string{"", " ", "/", "x", "é", "\u212a", "\u017f", "\xff", "..", "A", "%", "e", "ls"}
	var b strings.Builder
	for range r.IntN(14) {
		b.WriteString(junk[r.IntN(len(junk))])
		if r.IntN(4) == 0 {
			continue
		}
		k := keys[r.IntN(len(keys))]
		switch r.IntN(4) {
		case 0:
			k = k[:r.IntN(len(k)+1)]
		case 1:
			var f strings.Builder
			for i := 0; i < len(k); i++ {
				c := k[i]
				if r.IntN(2) == 0 && 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				f.WriteByte(c)
			}
			k = f.String()
		}
		b.WriteString(k)
	}
	return b.String()
}

// ghpmf answers what Coraza's @pmFromFile answers, captures included, on
// every CRS data file: random values made of the file's keywords.
func TestPMFMatchesPMFromFile(t *testing.T) {
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.data")
	if err != nil || len(files) < 10 {
		t.Fatalf("CRS data files: %v, %v", files, err)
	}
	r := rand.New(rand.NewPCG(7, 11))
	matched, captured := 0, 0
	for _, f := range files {
		data, err := fs.ReadFile(coreruleset.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		keys := pmFileKeywords(data)
		if len(keys) == 0 {
			continue
		}
		name := strings.TrimPrefix(f, "@owasp_crs/")
		stock, ours := pmfEngines(t, name, data)
		fails := 0
		for range 1000 {
			v := pmfValue(r, keys)
			want, got := pmfOutcome(stock, v), pmfOutcome(ours, v)
			if got != want {
				t.Errorf("%s, %q: got %s, want %s", name, v, got, want)
				if fails++; fails == 5 {
					break
				}
			}
			if strings.Contains(want, "2:") {
				matched++
			}
			if first, _, ok := strings.Cut(want, " 2:"); ok {
				if f := strings.Split(first, "|"); len(f) == 10 && f[1] != "" {
					// TX.1 set: two captures or more.
					captured++
				}
			}
		}
	}
	t.Logf("%d values matched, %d of them with two captures or more", matched, captured)
	// Or the test proves nothing.
	if matched < 2000 || captured < 1000 {
		t.Errorf("%d values matched, %d with several captures; want at least 2000 and 1000", matched, captured)
	}
}

// The CRS rule sets built from crsFS use ghpmf, not Coraza's automata.
func TestCRSUsesPMF(t *testing.T) {
	b, err := fs.ReadFile(crsFS{maxPL: 1}, "@owasp_crs/REQUEST-932-APPLICATION-ATTACK-RCE.conf")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "@pmFromFile ") || !strings.Contains(s, `"@ghpmf unix-shell.data"`) {
		t.Error("REQUEST-932 still has @pmFromFile, or not @ghpmf unix-shell.data")
	}
}
