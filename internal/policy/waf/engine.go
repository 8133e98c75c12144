package waf

import (
	"fmt"
	"io/fs"
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
	// onMatch receives every matched rule that logs.
	onMatch func(types.MatchedRule)
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
		root = crsFS{}
	}
	var g *gateSet
	if o.fast && o.gate {
		var token string
		g, token = newGateSet()
		defer gates.Delete(token)
		// First in their phases, before any CRS rule.
		seclang = gateDirectives(token) + seclang
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
		g.build(o.extra)
	}
	return w, g, nil
}

// crsFS is the embedded CRS with every "@rx " operator of its .conf files
// renamed to "@ghrx ". Rewritten files are kept for the process's life:
// every WAF built here reads the same few hundred kilobytes.
type crsFS struct{}

var rewritten sync.Map // name -> []byte

func (crsFS) Open(name string) (fs.File, error) { return coreruleset.FS.Open(name) }

func (crsFS) ReadFile(name string) ([]byte, error) {
	if v, ok := rewritten.Load(name); ok {
		return v.([]byte), nil
	}
	b, err := fs.ReadFile(coreruleset.FS, name)
	if err != nil || !strings.HasSuffix(name, ".conf") {
		return b, err
	}
	b = []byte(strings.ReplaceAll(string(b), `"@rx `, `"@`+operatorName+` `))
	b = []byte(strings.ReplaceAll(string(b), `"!@rx `, `"!@`+operatorName+` `))
	rewritten.Store(name, b)
	return b, nil
}
