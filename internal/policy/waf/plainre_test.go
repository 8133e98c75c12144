package waf

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// plainInputs are plain (no special byte) strings likely to match CRS's
// command, SQL and path expressions: corpus strings without special
// bytes, and random sequences of CRS keywords, words and separators.
func plainInputs(t testing.TB) []string {
	var out []string
	for _, s := range corpusStrings(t) {
		if _, plain := fold(s, nil); plain {
			out = append(out, s)
		}
	}
	words := append(pmKeywords(t), "cat", "ls", "id", "whoami", "uname -a", "sudo", "env", "nohup", "time", "busybox", "command",
		"select", "union", "from", "where", "or 1", "and", "sleep", "benchmark", "etc/passwd", "bin/sh", "..", "/", " ", ",", "@", "?", "-",
		"Acme Outdoor", "json.created", "footwear", "\u212a", "\u017f", "\n", "\t")
	rng := rand.New(rand.NewPCG(9, 10))
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			w := words[rng.IntN(len(words))]
			if rng.IntN(3) == 0 {
				w = strings.ToUpper(w)
			}
			b.WriteString(w)
			if rng.IntN(2) == 0 {
				b.WriteByte(" /.,-"[rng.IntN(5)])
			}
		}
		if _, plain := fold(b.String(), nil); plain {
			out = append(out, b.String())
		}
	}
	return out
}

// checkPlainRe fails when an expression's plain reduction answers
// differently from the expression on a plain input.
func checkPlainRe(t testing.TB, exprs []*rx, s string) (matched int) {
	if _, plain := fold(s, nil); !plain {
		return 0
	}
	for _, r := range exprs {
		if r.pre.plainRe == nil {
			continue
		}
		got, want := r.pre.plainRe.MatchString(s), r.re.MatchString(s)
		if got != want {
			t.Errorf("%q: plain reduction of %.80s matches %v, the expression %v", s, r.re, got, want)
		}
		if want {
			matched++
		}
	}
	return matched
}

// On inputs without special bytes, @ghrx's plain reduction (prefilter.
// plainRe) matches exactly when the expression does; checked on the
// corpus and random keyword sequences. The test fails if no expression
// has a reduction or none of them ever matches (it would prove nothing).
func TestPlainReMatchesRx(t *testing.T) {
	exprs := ghrxSamples(t)
	withRe := 0
	for _, r := range exprs {
		if r.pre.plainRe != nil {
			withRe++
		}
	}
	inputs := plainInputs(t)
	matched := 0
	for _, s := range inputs {
		matched += checkPlainRe(t, exprs, s)
	}
	t.Logf("%d of %d expressions have a plain reduction; %d plain inputs; %d matches", withRe, len(exprs), len(inputs), matched)
	if withRe < 20 {
		t.Errorf("got %d expressions with a plain reduction, want at least 20", withRe)
	}
	if matched < 200 {
		t.Errorf("got %d matches of reduced expressions, want at least 200", matched)
	}
}

// FuzzPlainReMatchesRx is TestPlainReMatchesRx on fuzzed inputs:
//
//	go test -run XXX -fuzz FuzzPlainReMatchesRx -fuzztime 60s ./internal/policy/waf/
func FuzzPlainReMatchesRx(f *testing.F) {
	for _, s := range plainInputs(f)[:500] {
		f.Add(s)
	}
	exprs := ghrxSamples(f)
	f.Fuzz(func(t *testing.T, s string) { checkPlainRe(t, exprs, s) })
}
