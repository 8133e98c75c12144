package waf

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
)

// TestCtlByTagMatchesCoraza: ghctl (ctl.go) takes away the same targets as
// Coraza's ctl:ruleRemoveTargetByTag, from the rules of that tag only, and
// the CRS is loaded with it.
func TestCtlByTagMatchesCoraza(t *testing.T) {
	register()
	if !ctlWorks() {
		t.Fatal("ghctl cannot read this Coraza's rule list")
	}
	build := func(action string) coraza.WAF {
		t.Helper()
		d := "SecRuleEngine On\n"
		if action != "" {
			d += fmt.Sprintf(`SecRule REQUEST_FILENAME "@rx /" "id:10,phase:1,pass,nolog,%s:ruleRemoveTargetByTag=perf;REQUEST_FILENAME"`+"\n", action)
		}
		d += `SecRule REQUEST_FILENAME|ARGS "@rx attack" "id:11,phase:1,pass,log,tag:'perf'"` + "\n" +
			`SecRule REQUEST_FILENAME|ARGS "@rx attack" "id:12,phase:1,pass,log,tag:'other'"` + "\n" +
			`SecRule REQUEST_FILENAME "@rx attack" "id:13,phase:2,pass,log,tag:'x',tag:'perf'"` + "\n"
		w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(d))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	stock, ours, none := build("ctl"), build(ctlActionName), build("")
	for _, uri := range []string{"/attack", "/attack?a=attack", "/x?a=attack", "/x", "noslash-attack"} {
		c := &crsCase{method: "GET", uri: uri, version: "HTTP/1.1"}
		want, got := c.run(stock), c.run(ours)
		if !slices.Equal(got, want) {
			t.Errorf("%s: ghctl matched %v, ctl %v", uri, got, want)
		}
		if uri == "/attack" && slices.Equal(c.run(none), want) {
			t.Errorf("%s: the ctl changes nothing; the test proves nothing", uri)
		}
	}
	b, err := crsFS{}.ReadFile("@owasp_crs/REQUEST-941-APPLICATION-ATTACK-XSS.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), ctlActionName+":ruleRemoveTargetByTag=xss-perf-disable") || strings.Contains(strings.ReplaceAll(string(b), ctlActionName+":", ""), "ctl:ruleRemoveTargetByTag") {
		t.Error("the CRS is not loaded with ghctl")
	}
}
