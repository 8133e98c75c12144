package waf

import (
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

var plTag = regexp.MustCompile(`tag:'paranoia-level/(\d)'`)

// cutParanoia removes exactly the rules of higher paranoia levels: the
// text it cuts has only rules tagged above maxPL (or untagged helpers
// behind the same guards), the text it keeps none of them, the guards of
// level maxPL+1 are kept right before the closing marker, and no cut id
// is still defined in the kept text.
func TestCutParanoia(t *testing.T) {
	for _, maxPL := range []int{1, 2, 3} {
		cutSome := false
		for _, f := range requestFiles {
			raw, err := fs.ReadFile(coreruleset.FS, "@owasp_crs/"+f.name)
			if err != nil {
				t.Fatal(err)
			}
			kept, cut := cutParanoia(string(raw), maxPL)
			if len(kept)+len(cut) != len(raw) {
				t.Errorf("PL%d %s: kept %d + cut %d bytes, file has %d", maxPL, f.name, len(kept), len(cut), len(raw))
			}
			for _, m := range plTag.FindAllStringSubmatch(kept, -1) {
				if n, _ := strconv.Atoi(m[1]); n > maxPL {
					t.Errorf("PL%d %s: kept a rule of paranoia level %d", maxPL, f.name, n)
					break
				}
			}
			for _, m := range plTag.FindAllStringSubmatch(cut, -1) {
				if n, _ := strconv.Atoi(m[1]); n <= maxPL {
					t.Errorf("PL%d %s: cut a rule of paranoia level %d", maxPL, f.name, n)
					break
				}
			}
			if cut == "" {
				continue
			}
			cutSome = true
			guard := guardPrefix + strconv.Itoa(maxPL+1) + `"`
			i := strings.LastIndex(kept, guard)
			if i < 0 {
				t.Errorf("PL%d %s: guard of level %d not kept", maxPL, f.name, maxPL+1)
			} else if rest := kept[i:]; !strings.Contains(rest, "\nSecMarker ") || strings.Contains(rest, "\nSecRule ") {
				t.Errorf("PL%d %s: after the last guard comes %q, want the closing SecMarker", maxPL, f.name, rest)
			}
			keptIDs := ruleIDs(kept)
			for id := range ruleIDs(cut) {
				if keptIDs[id] {
					t.Errorf("PL%d %s: rule %d both cut and kept", maxPL, f.name, id)
				}
			}
		}
		if !cutSome {
			t.Errorf("PL%d: nothing cut from any file", maxPL)
		}
	}
}

func TestRuleIDs(t *testing.T) {
	text := "SecRule ARGS \"@rx sessionid:12\" \\\n    \"id:942100,\\\n    phase:2,msg:'uid:7'\"\nSecAction \"id:900000,pass\"\n"
	got := slices.Sorted(func(yield func(int) bool) {
		for id := range ruleIDs(text) {
			if !yield(id) {
				return
			}
		}
	})
	if want := []int{900000, 942100}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// REQUEST-999 updates rules of paranoia level 2; the cut drops those
// updates (Coraza refuses updates of absent rules), and only those.
func TestDropUpdatesOf(t *testing.T) {
	raw, err := fs.ReadFile(coreruleset.FS, "@owasp_crs/REQUEST-999-COMMON-EXCEPTIONS-AFTER.conf")
	if err != nil {
		t.Fatal(err)
	}
	ids := cutIDs(1)
	out := dropUpdatesOf(string(raw), ids)
	dropped, kept := 0, 0
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "SecRuleUpdateTargetById" {
			continue
		}
		id, _ := strconv.Atoi(f[1])
		if strings.Contains(out, l+"\n") == ids[id] {
			t.Errorf("rule %d (cut: %v): line %q kept: %v", id, ids[id], l, !ids[id])
		}
		if ids[id] {
			dropped++
		} else {
			kept++
		}
	}
	if dropped == 0 || kept == 0 {
		t.Errorf("dropped %d, kept %d updates; want some of each (or the test proves nothing)", dropped, kept)
	}
}

// The cut applies only when the detection paranoia level cannot rise
// above the route's.
func TestCutLevel(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want int
	}{
		{"", 1},
		{"paranoia_level: 2", 2},
		{"paranoia_level: 4", 0},
		{"exclude: {ids: [942100]}", 1},
		{"exclude: {ids: [942013]}", 0}, // a guard: PL2 SQLi rules then run
		{`directives: ['SecRule REQUEST_HEADERS:User-Agent "@pm sqlmap" "id:10001,phase:1,deny,status:403,log"']`, 1},
		{`directives: ['SecAction "id:10002,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=2"']`, 0},
		{`directives: ['SecRuleRemoveById 942013']`, 0},
		{`directives: ['SecRuleUpdateActionById 942013 "pass"']`, 0},
	} {
		t.Run(c.yaml, func(t *testing.T) {
			s, err := decode(policytest.Node(t, c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := cutLevel(s); got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

// End to end: a request that only a paranoia-level-2 rule catches (942430,
// too many SQL special characters in an argument) matches nothing of that
// level at level 1, and matches it when a directive raises the detection
// level, which keeps the level-2 rules loaded.
func TestDetectionLevelRaisedKeepsRules(t *testing.T) {
	req := func() *http.Request {
		return attack{Payload: "a'b'c'd'e'f'g'h'i'j'k'l'm'n'o'p", In: "query"}.request()
	}
	plain := matchedIDs(t, oursWAF(t, "mode: detect"), req())
	if slices.Contains(plain, 942430) {
		t.Fatalf("942430 (paranoia level 2) matched at level 1: %v", plain)
	}
	raised := matchedIDs(t, oursWAF(t, `{mode: detect, directives: ['SecAction "id:10003,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=2"']}`), req())
	if !slices.Contains(raised, 942430) {
		t.Errorf("942430 did not match with the detection level raised to 2: %v", raised)
	}
}

// At paranoia level 2 the cut engine (levels 3 and 4 left out) matches
// exactly what the whole rule set matches, on the attack corpus in the
// query and the benign requests (level 1 is TestGateNeverSkipsAMatch's).
func TestCutKeepsMatchesPL2(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two rule sets and runs the corpus through both")
	}
	w := oursWAF(t, "paranoia_level: 2")
	whole, err := newEngine(directives(w.s), engineOpts{fast: true})
	if err != nil {
		t.Fatal(err)
	}
	ref := &WAF{engine: whole, release: func() error { return nil }, s: w.s, log: discard}
	n := 0
	check := func(name string, r func() *http.Request) {
		got, want := matchedIDs(t, w, r()), matchedIDs(t, ref, r())
		if !slices.Equal(got, want) {
			t.Errorf("%s: cut matched %v, whole %v", name, got, want)
		}
		n++
	}
	for i, a := range readJSONL[attack](t, "testdata/attacks.jsonl") {
		check(fmt.Sprintf("attack %d", i), a.request)
	}
	for _, b := range readJSONL[benign](t, "testdata/benign.jsonl") {
		check(b.Name, b.request)
	}
	if n < 400 {
		t.Fatalf("checked %d requests, want at least 400", n)
	}
}
