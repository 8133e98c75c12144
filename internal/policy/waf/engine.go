package waf

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
)

// crsFile is one CRS request rule file and what decides whether it loads.
type crsFile struct {
	name string
	// platform, when set, is the platform the whole file is about: it
	// loads only when that platform is listed.
	platform string
	// body marks files that only look at request bodies of a kind
	// (multipart) and load only when bodies are inspected.
	body bool
}

// requestFiles are the CRS 4 request-phase files in load order. The
// RESPONSE-* files are never loaded: the gateway does not feed responses
// to the WAF (data leaks are the dlp policy's), so they would only cost
// parse time and memory.
var requestFiles = []crsFile{
	{name: "REQUEST-901-INITIALIZATION.conf"},
	{name: "REQUEST-905-COMMON-EXCEPTIONS.conf"},
	{name: "REQUEST-911-METHOD-ENFORCEMENT.conf"},
	{name: "REQUEST-913-SCANNER-DETECTION.conf"},
	{name: "REQUEST-920-PROTOCOL-ENFORCEMENT.conf"},
	{name: "REQUEST-921-PROTOCOL-ATTACK.conf"},
	{name: "REQUEST-922-MULTIPART-ATTACK.conf", body: true},
	{name: "REQUEST-930-APPLICATION-ATTACK-LFI.conf"},
	{name: "REQUEST-931-APPLICATION-ATTACK-RFI.conf"},
	{name: "REQUEST-932-APPLICATION-ATTACK-RCE.conf"},
	{name: "REQUEST-933-APPLICATION-ATTACK-PHP.conf", platform: "php"},
	{name: "REQUEST-934-APPLICATION-ATTACK-GENERIC.conf"},
	{name: "REQUEST-941-APPLICATION-ATTACK-XSS.conf"},
	{name: "REQUEST-942-APPLICATION-ATTACK-SQLI.conf"},
	{name: "REQUEST-943-APPLICATION-ATTACK-SESSION-FIXATION.conf"},
	{name: "REQUEST-944-APPLICATION-ATTACK-JAVA.conf", platform: "java"},
	{name: "REQUEST-949-BLOCKING-EVALUATION.conf"},
	{name: "REQUEST-999-COMMON-EXCEPTIONS-AFTER.conf"},
}

// platformTags are the CRS tags of rules, in files that otherwise load,
// that only matter for one platform; they are removed when the platform
// is not listed.
var platformTags = map[string][]string{
	"php":     {"language-php"},
	"java":    {"language-java"},
	"unix":    {"platform-unix", "language-shell"},
	"windows": {"platform-windows", "platform-iis"},
	"nodejs":  {"platform-nodejs", "language-javascript"},
}

// Platforms are the platform names platform accepts, besides "all".
var Platforms = []string{"unix", "windows", "nodejs", "php", "java"}

// DefaultPlatforms are the platforms assumed when the config names none:
// what a typical API upstream written in Go, Rust, .NET or Python may
// pass input to (a shell on Unix or Windows, a Node.js runtime). PHP and
// Java rules are left out; they are about a third of the CRS's request
// time. List them for upstreams on those platforms.
var DefaultPlatforms = []string{"unix", "windows", "nodejs"}

// directives returns the SecLang that builds the WAF for s.
func directives(s *settings) string {
	var b strings.Builder
	engine := "On"
	if s.mode == ModeDetect {
		engine = "DetectionOnly"
	}
	fmt.Fprintf(&b, "SecRuleEngine %s\n", engine)
	// Only the body kinds we inspect get a body processor; the gateway
	// feeds the body only for those (see WAF.inspectBody).
	if s.inspect.body {
		b.WriteString("SecRequestBodyAccess On\n")
		b.WriteString(`SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"` + "\n")
		b.WriteString(`SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"` + "\n")
		b.WriteString(`SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"` + "\n")
		b.WriteString(`SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"` + "\n")
		b.WriteString(`SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"` + "\n")
		b.WriteString("SecRequestBodyJsonDepthLimit 1024\n")
		limit := strconv.FormatInt(s.inspect.bodyLimit, 10)
		b.WriteString("SecRequestBodyLimit " + limit + "\nSecRequestBodyInMemoryLimit " + limit + "\n")
		b.WriteString("SecRequestBodyLimitAction Reject\n")
	} else {
		b.WriteString("SecRequestBodyAccess Off\n")
	}
	b.WriteString("SecResponseBodyAccess Off\n")
	b.WriteString("SecAuditEngine Off\n")
	fmt.Fprintf(&b, "SecArgumentsLimit %d\n", s.inspect.maxArgs)
	b.WriteString("Include @crs-setup.conf.example\n")
	fmt.Fprintf(&b, `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"`+"\n", s.paranoia)
	fmt.Fprintf(&b, `SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=4"`+"\n", s.inbound)
	// CRS allows only GET, HEAD, POST and OPTIONS by default (rule
	// 911100); an API uses PUT, PATCH and DELETE as a matter of course.
	fmt.Fprintf(&b, `SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=%s'"`+"\n", strings.Join(s.methods, " "))
	for _, f := range requestFiles {
		if f.platform != "" && !s.hasPlatform(f.platform) {
			continue
		}
		if f.body && !s.inspect.body {
			continue
		}
		b.WriteString("Include @owasp_crs/" + f.name + "\n")
	}
	for _, p := range Platforms {
		if s.hasPlatform(p) {
			continue
		}
		for _, tag := range platformTags[p] {
			b.WriteString("SecRuleRemoveByTag " + tag + "\n")
		}
	}
	for _, id := range s.excludeIDs {
		fmt.Fprintf(&b, "SecRuleRemoveById %d\n", id)
	}
	for _, tag := range s.excludeTags {
		b.WriteString("SecRuleRemoveByTag " + tag + "\n")
	}
	for _, d := range s.directives {
		b.WriteString(d + "\n")
	}
	return b.String()
}

// StockDirectives is Coraza's recommended setup with the whole CRS at
// paranoia level 1, blocking: what an integration following Coraza's and
// CRS's instructions runs. The benchmarks and the corpus test measure
// against it.
const StockDirectives = "Include @coraza.conf-recommended\n" +
	"Include @crs-setup.conf.example\n" +
	"Include @owasp_crs/*.conf\n" +
	"SecRuleEngine On\n"

// engineOpts say how newEngine compiles.
type engineOpts struct {
	// fast reads CRS files through crsFS (@rx replaced by the
	// pre-filtered ghrx); else straight from the embedded CRS.
	fast bool
	// gate runs the per-phase combined pre-filter (gate.go); needs fast.
	gate bool
	// extra is the user's SecLang, which the gate checks for directives
	// that widen rules.
	extra []string
	// paranoia is the CRS paranoia level: the gate leaves rules of
	// higher levels to Coraza (which skips them). 0: no limit.
	paranoia int
	// cutPL, when 1 to 3 (with fast), leaves out the CRS sections that
	// only run at a higher detection paranoia level (cutParanoia); the
	// caller checks that the level cannot rise (cutLevel).
	cutPL int
	// onMatch receives every matched rule that logs.
	onMatch func(types.MatchedRule)
	// noFold (with gate) keeps the folded rules (fold.go) in the
	// compiled rule set and removes them from each transaction instead
	// (gateSet.removeFolded), so that tests can unfold by emptying
	// gateSet.folded.
	noFold bool
}

// newEngine compiles a Coraza WAF from SecLang.
func newEngine(seclang string, o engineOpts) (coraza.WAF, error) {
	w, _, err := newEngineGate(seclang, o)
	return w, err
}

// newEngineGate is newEngine also returning the gate (nil without).
func newEngineGate(seclang string, o engineOpts) (coraza.WAF, *gateSet, error) {
	root := coreruleset.FS
	if o.fast {
		register()
		root = crsFS{maxPL: o.cutPL}
	}
	var g *gateSet
	if o.fast && o.gate {
		var token string
		g, token = newGateSet()
		defer gates.Delete(token)
		// First in their phases, before any CRS rule.
		seclang = gateDirectives(token) + seclang
		if !o.noFold {
			// Last, once every rule has been added: the folded rules
			// leave the rule set (crsFS.ReadFile, foldAtBuild).
			g.text = seclang
			seclang += "\nInclude " + foldFilePrefix + token + ".conf\n"
		}
	}
	cfg := coraza.NewWAFConfig().WithRootFS(root).WithDirectives(seclang)
	if g != nil {
		cfg = experimental.WAFConfigWithRuleObserver(cfg, g.observe)
	}
	if o.onMatch != nil {
		cfg = cfg.WithErrorCallback(o.onMatch)
	}
	w, err := coraza.NewWAF(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("waf: compiling rules: %w", err)
	}
	if g != nil {
		g.maxPL = o.paranoia
		if !g.foldedAtBuild {
			g.analyse(seclang, root)
			g.removeFolded = true
		}
		g.text = ""
		if g.quiet != nil {
			g.quiet.folded = map[int]bool{}
			for _, ids := range g.folded {
				for _, id := range ids {
					g.quiet.folded[id] = true
				}
			}
		}
		g.build(o.extra)
		if g.quiet != nil && !g.quiet.attach(g) {
			g.quiet = nil
		}
	}
	return w, g, nil
}

// crsFS is the embedded CRS with every "@rx " operator of its .conf files
// renamed to "@ghrx " and every "@pmFromFile " to "@ghpmf " (pmf.go), and, when maxPL is 1 to 3, the sections that only
// run at a higher detection paranoia level cut out (cutParanoia).
// Rewritten files are kept for the process's life: every WAF built here
// reads the same few hundred kilobytes.
type crsFS struct{ maxPL int }

// rewritten holds the rewritten files by crsKey.
var rewritten sync.Map

type crsKey struct {
	name  string
	maxPL int
}

func (crsFS) Open(name string) (fs.File, error) { return coreruleset.FS.Open(name) }

func (c crsFS) ReadFile(name string) ([]byte, error) {
	if token, ok := strings.CutPrefix(path.Base(name), foldFilePrefix); ok {
		return foldAtBuild(strings.TrimSuffix(token, ".conf"), c)
	}
	key := crsKey{name, c.maxPL}
	if v, ok := rewritten.Load(key); ok {
		return v.([]byte), nil
	}
	b, err := fs.ReadFile(coreruleset.FS, name)
	if err != nil || !strings.HasSuffix(name, ".conf") {
		return b, err
	}
	s := strings.ReplaceAll(string(b), `"@rx `, `"@`+operatorName+` `)
	s = strings.ReplaceAll(s, `"!@rx `, `"!@`+operatorName+` `)
	s = renamePMF(s)
	s = renameCtlByTag(s)
	if c.maxPL >= 1 && c.maxPL <= 3 {
		s, _ = cutParanoia(s, c.maxPL)
		s = dropUpdatesOf(s, cutIDs(c.maxPL))
	}
	b = []byte(s)
	rewritten.Store(key, b)
	return b, nil
}

// foldFilePrefix names the file newEngineGate includes last: crsFS reads
// it as the SecRuleRemoveById of the rules fold.go folds.
const foldFilePrefix = "@gatehouse-fold-"

// foldAtBuild analyses the rule set of the gate named token, whose rules
// have all been added (the include is the last directive), and returns
// the directive that removes its folded rules from the compiled rule set:
// a rule no request can match then costs no transaction anything, not
// even the removal (fold.go's argument is unchanged: the rules are the
// same, removed for every transaction at once). Removing a rule from the
// set is what removing it from each transaction at the start of its
// phase does: no rule of the set refers to it any more (the include comes
// after every directive), and skip:N counts neither.
func foldAtBuild(token string, root fs.FS) ([]byte, error) {
	v, ok := gates.Load(token)
	if !ok {
		return nil, fmt.Errorf("waf: unknown gate %q", token)
	}
	g := v.(*gateSet)
	g.analyse(g.text, root)
	var ids []string
	for _, phase := range g.folded {
		for _, id := range phase {
			ids = append(ids, strconv.Itoa(id))
		}
	}
	g.foldedAtBuild = true
	if len(ids) == 0 {
		return nil, nil
	}
	return []byte("SecRuleRemoveById " + strings.Join(ids, " ") + "\n"), nil
}

// guardPrefix starts CRS's paranoia guards: in each request file, the
// rules of paranoia level N and above are preceded by one guard per phase,
//
//	SecRule TX:DETECTION_PARANOIA_LEVEL "@lt N" "id:...,skipAfter:END-..."
//
// which jumps to the file's closing SecMarker when the detection level is
// lower than N; the sections of levels N+1.. follow, each behind its own
// guards, up to that marker.
const guardPrefix = `SecRule TX:DETECTION_PARANOIA_LEVEL "@lt `

// cutParanoia removes from a CRS file's text what lies between its guards
// of level maxPL+1 and its closing SecMarker: rules that CRS itself skips
// whenever the detection paranoia level is at most maxPL. The guards are
// kept (they still jump to the marker, now the next line). It returns the
// text left and the text cut; a file without such guards, or without a
// SecMarker after them, is left whole.
//
// Why: at paranoia level 1 those sections are about 40% of the request
// rules loaded; their compiled expressions and keyword automata would stay
// resident for the rule set's life without ever being evaluated. Only
// valid while the detection level cannot rise above maxPL (see cutLevel).
func cutParanoia(text string, maxPL int) (kept, cut string) {
	lines := strings.SplitAfter(text, "\n")
	guard := guardPrefix + strconv.Itoa(maxPL+1) + `"`
	first := -1
	for i, l := range lines {
		if strings.HasPrefix(l, guard) {
			first = i
			break
		}
	}
	if first < 0 {
		return text, ""
	}
	last := first
	for last+1 < len(lines) && strings.HasPrefix(lines[last+1], guard) {
		last++
	}
	marker := -1
	for i := last + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "SecMarker ") {
			marker = i
			break
		}
	}
	if marker < 0 {
		return text, ""
	}
	return strings.Join(lines[:last+1], "") + strings.Join(lines[marker:], ""), strings.Join(lines[last+1:marker], "")
}

// ruleIDs returns the ids of the rules in SecLang text: the N of each
// "id:N" action (starting an action list, after a comma or on its own
// continuation line).
func ruleIDs(text string) map[int]bool {
	ids := map[int]bool{}
	for at := 0; ; {
		i := strings.Index(text[at:], "id:")
		if i < 0 {
			return ids
		}
		i += at
		at = i + 3
		if i > 0 && !strings.ContainsRune("\",, \t", rune(text[i-1])) {
			continue
		}
		end := at
		for end < len(text) && text[end] >= '0' && text[end] <= '9' {
			end++
		}
		if id, err := strconv.Atoi(text[at:end]); err == nil {
			ids[id] = true
		}
	}
}

// cutIDs are the ids of the CRS request rules cutParanoia removes at
// maxPL, over every request file.
func cutIDs(maxPL int) map[int]bool {
	if v, ok := cutIDCache.Load(maxPL); ok {
		return v.(map[int]bool)
	}
	ids := map[int]bool{}
	for _, f := range requestFiles {
		b, err := fs.ReadFile(coreruleset.FS, "@owasp_crs/"+f.name)
		if err != nil {
			continue
		}
		_, cut := cutParanoia(string(b), maxPL)
		for id := range ruleIDs(cut) {
			ids[id] = true
		}
	}
	v, _ := cutIDCache.LoadOrStore(maxPL, ids)
	return v.(map[int]bool)
}

var cutIDCache sync.Map // maxPL -> map[int]bool

// dropUpdatesOf removes the one-line SecRuleUpdateTargetById directives
// about rules in ids (REQUEST-999 updates some rules of higher paranoia
// levels; Coraza refuses to update a rule it does not have). They only
// change targets of rules that are not loaded.
func dropUpdatesOf(text string, ids map[int]bool) string {
	if len(ids) == 0 || !strings.Contains(text, "SecRuleUpdateTargetById ") {
		return text
	}
	lines := strings.SplitAfter(text, "\n")
	out := lines[:0]
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "SecRuleUpdateTargetById "); ok && !strings.HasSuffix(strings.TrimRight(l, "\n"), "\\") {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if id, err := strconv.Atoi(f[0]); err == nil && ids[id] {
					continue
				}
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// paranoiaGuards are the ids of the paranoia guards of the CRS request
// files (see guardPrefix).
var paranoiaGuards = sync.OnceValue(func() map[int]bool {
	ids := map[int]bool{}
	for _, f := range requestFiles {
		b, err := fs.ReadFile(coreruleset.FS, "@owasp_crs/"+f.name)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, guardPrefix) {
				continue
			}
			_, rest, ok := strings.Cut(l, `"id:`)
			if !ok {
				continue
			}
			end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
			if end < 0 {
				end = len(rest)
			}
			if id, err := strconv.Atoi(rest[:end]); err == nil {
				ids[id] = true
			}
		}
	}
	return ids
})

// cutLevel returns the paranoia level above which the CRS sections can be
// left out of s's rule set (crsFS.maxPL), 0 when none can. They can when
// the detection paranoia level is sure to stay s's level: CRS sets it to
// the blocking level we configure, and nothing the user adds may change
// that: no directive that mentions a paranoia level or removes or updates
// rules (a guard could be among them; the check is textual and errs on the
// side of loading everything), no guard among the excluded ids.
func cutLevel(s *settings) int {
	if s.paranoia < 1 || s.paranoia > 3 {
		return 0
	}
	for _, d := range s.directives {
		l := strings.ToLower(d)
		if strings.Contains(l, "paranoia") || strings.Contains(l, "remove") || strings.Contains(l, "update") {
			return 0
		}
	}
	guards := paranoiaGuards()
	for _, id := range s.excludeIDs {
		if guards[id] {
			return 0
		}
	}
	return s.paranoia
}
