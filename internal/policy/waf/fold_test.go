package waf

import (
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestFoldIDs checks which rules folding removes from the policy's rule
// set: constant-false guards and bookkeeping go, rules that write or read
// the request stay, and any directive that could change a folded
// condition keeps the rules it concerns.
func TestFoldIDs(t *testing.T) {
	for _, c := range []struct {
		name string
		yaml string
		// folded and kept are ids by phase (1, 2).
		folded, kept [3][]int
	}{
		{
			name: "PL1",
			yaml: "paranoia_level: 1",
			// 911011/911012: "@lt 1" guards; 901120: blocking level set
			// by the config; 949053: "@ge 2" score rule; 920380: a
			// chain on &TX:MAX_NUM_ARGS "@eq 1", never set.
			folded: [3][]int{1: {911011, 901120, 901001, 949053, 941011}, 2: {911012, 949061, 920380}},
			// 901125 sets the detection level (true: it writes); 911013
			// is a true guard (it matches, so it stays); 949052 adds
			// the PL1 score; 911100 reads the request.
			kept: [3][]int{1: {901125, 911013, 949052, 911100}, 2: {911014, 949059}},
		},
		{
			name:   "PL2",
			yaml:   "paranoia_level: 2",
			folded: [3][]int{1: {911011, 911013, 949054}, 2: {911012, 911014}},
			kept:   [3][]int{1: {911015, 949053}, 2: {911016}},
		},
		{
			name:   "PL4",
			yaml:   "paranoia_level: 4",
			folded: [3][]int{1: {911011, 911013, 911015, 911017}, 2: {911018}},
			kept:   [3][]int{1: {949052, 949053, 949054, 949055}},
		},
		{
			// A later rule lowers the detection level in phase 1: the
			// phase 1 guards ran before it, the phase 2 ones read 0.
			name:   "setvar after",
			yaml:   `directives: ['SecAction "id:1000,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=0"']`,
			folded: [3][]int{1: {911011}},
			kept:   [3][]int{2: {911012, 913012}},
		},
		{
			// The same write in a chained rule (not seen by the rule
			// observer) makes the level unknown everywhere.
			name: "setvar in chain",
			yaml: `directives: ['SecRule REQUEST_URI "@contains /x" "id:1001,phase:1,pass,nolog,chain"', 'SecRule REQUEST_URI "@contains y" "setvar:tx.detection_paranoia_level=0"']`,
			kept: [3][]int{1: {911011, 913011}, 2: {911012}},
		},
		{
			// A setvar whose name is a macro could write any variable.
			name: "dynamic setvar",
			yaml: `directives: ['SecRule ARGS:n "@rx ^d" "id:1002,phase:1,pass,nolog,setvar:tx.%{ARGS.n}=0"']`,
			kept: [3][]int{1: {911011, 901120}, 2: {911012}},
		},
		{
			// Without 901125 the level is never set: Coraza's guards see
			// no value. Folding treats the removed rule as unknown.
			name: "writer removed",
			yaml: "exclude: {ids: [901125]}",
			kept: [3][]int{1: {911011}, 2: {911012}},
		},
		{
			name: "update action",
			yaml: `directives: ['SecRuleUpdateActionById 911011 "pass"']`,
			kept: [3][]int{1: {911011, 901120}, 2: {911012}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := gateOf(t, oursWAF(t, c.yaml))
			for phase := 1; phase <= 2; phase++ {
				for _, id := range c.folded[phase] {
					if !slices.Contains(g.folded[phase], id) {
						t.Errorf("phase %d: %d not folded; folded %v", phase, id, g.folded[phase])
					}
				}
				for _, id := range c.kept[phase] {
					if slices.Contains(g.folded[phase], id) {
						t.Errorf("phase %d: %d folded", phase, id)
					}
				}
			}
		})
	}
}

// TestFoldedNeverMatch runs the corpora through the policy at every
// paranoia level: no folded rule matches with the gate off, and the
// engine with folding matches the same rules as the same gated engine
// without it. (Compared with the gate on both sides: the gate is
// TestGateNeverSkipsAMatch's subject.)
func TestFoldedNeverMatch(t *testing.T) {
	reqs := corpusRequests(t)
	for _, pl := range []string{"1", "2", "3", "4"} {
		yaml := "paranoia_level: " + pl
		folded, plain := oursWAF(t, yaml), ungated(t, yaml)
		g := gateOf(t, folded)
		if len(g.folded[1])+len(g.folded[2]) == 0 {
			t.Fatalf("PL%s: nothing folded", pl)
		}
		s := folded.s
		eng, g2, err := newEngineGate(directives(s), engineOpts{fast: true, gate: true, extra: s.directives, paranoia: s.paranoia, cutPL: cutLevel(s), noFold: true})
		if err != nil {
			t.Fatal(err)
		}
		g2.folded = [3][]int{}
		unfolded := &WAF{engine: eng, gate: g2, release: func() error { return nil }, s: s, log: discard}
		for name, req := range reqs {
			got, want := matchedIDs(t, folded, req()), matchedIDs(t, unfolded, req())
			if !slices.Equal(got, want) {
				t.Errorf("PL%s %s: folded matched %v, unfolded %v", pl, name, got, want)
			}
			for _, id := range matchedIDs(t, plain, req()) {
				if slices.Contains(g.folded[1], id) || slices.Contains(g.folded[2], id) {
					t.Errorf("PL%s %s: folded rule %d matches", pl, name, id)
				}
			}
		}
	}
}

// TestCRSRegressionFoldedMatchesUnfolded runs the CRS regression suite
// through the policy at paranoia levels 2 to 4 (level 1 is
// TestCRSRegressionGatedMatchesStock's), with and without folding: on
// every stage the same rules must match, and no folded rule may match
// with the gate and folding off.
func TestCRSRegressionFoldedMatchesUnfolded(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole suite at three levels")
	}
	cases := crsRegression(t)
	// Every other stage (every twentieth under the race detector): three
	// levels of the whole suite would double this package's test time.
	step := 2
	if raceEnabled {
		step = 20
	}
	for _, pl := range []string{"2", "3", "4"} {
		yaml := "paranoia_level: " + pl
		w := oursWAF(t, yaml)
		g := gateOf(t, w)
		s := w.s
		eng, g2, err := newEngineGate(directives(s), engineOpts{fast: true, gate: true, extra: s.directives, paranoia: s.paranoia, cutPL: cutLevel(s), noFold: true})
		if err != nil {
			t.Fatal(err)
		}
		g2.folded = [3][]int{}
		plain := ungated(t, yaml).engine
		folded := map[int]bool{}
		for _, ids := range g.folded {
			for _, id := range ids {
				folded[id] = true
			}
		}
		for i := 0; i < len(cases); i += step {
			c := &cases[i]
			if got, want := c.run(w.engine), c.run(eng); !slices.Equal(got, want) {
				t.Errorf("PL%s %s: folded matched %v, unfolded %v", pl, c.name, got, want)
			}
			for _, id := range c.run(plain) {
				if folded[id] {
					t.Errorf("PL%s %s: folded rule %d matches", pl, c.name, id)
				}
			}
		}
	}
}

// TestFoldedLeaveTheRuleSet: the policy's engine is compiled without its
// folded rules (foldAtBuild), which the gate then does not remove from
// each transaction; with noFold they stay in the set and the gate removes
// them.
func TestFoldedLeaveTheRuleSet(t *testing.T) {
	w := oursWAF(t, "")
	g := gateOf(t, w)
	if !g.foldedAtBuild || g.removeFolded {
		t.Fatalf("folded at build %v, removed per transaction %v", g.foldedAtBuild, g.removeFolded)
	}
	s := w.s
	eng, g2, err := newEngineGate(directives(s), engineOpts{fast: true, gate: true, extra: s.directives, paranoia: s.paranoia, cutPL: cutLevel(s), noFold: true})
	if err != nil {
		t.Fatal(err)
	}
	if g2.foldedAtBuild || !g2.removeFolded {
		t.Fatalf("noFold: folded at build %v, removed per transaction %v", g2.foldedAtBuild, g2.removeFolded)
	}
	rules := func(e coraza.WAF) map[int]bool {
		tx := e.NewTransaction()
		defer tx.Close()
		// Every CRS rule is tagged OWASP_CRS.
		ids, err := taggedRules(tx.(plugintypes.TransactionState), "OWASP_CRS")
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	in, kept := rules(w.engine), rules(eng)
	n := 0
	for _, ids := range g.folded {
		for _, id := range ids {
			n++
			if in[id] {
				t.Errorf("folded rule %d is in the compiled rule set", id)
			}
			if !kept[id] {
				t.Errorf("noFold: folded rule %d is not in the compiled rule set", id)
			}
		}
	}
	if n == 0 || len(in) == 0 {
		t.Fatalf("%d folded, %d rules", n, len(in))
	}
}
