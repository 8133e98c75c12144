package waf

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// ctlActionName is ctl:ruleRemoveTargetByTag with the tag looked up once.
//
// Coraza 3.8.1's ctl:ruleRemoveTargetByTag=TAG;COL:KEY walks every rule of
// the rule set and, for each whose tags hold TAG, calls
// tx.RemoveRuleTargetByID(id, COL, KEY, KEY's regexp), on every evaluation.
// CRS 941010 does so on nearly every request (REQUEST_FILENAME fails its
// byte range as soon as it holds a '/'): about 4% of the CPU of the CRS
// regression suite went to comparing tags. The rule set is read-only once
// compiled, so the ids that walk finds are the same every time: ghctl
// finds them on its first evaluation, from the same list Coraza walks
// (tx.WAF.Rules.GetRules(), read by reflection), and afterwards makes the
// same calls, in the same order, for those ids alone.
//
// crsFS renames the CRS's ctl:ruleRemoveTargetByTag to ghctl: with the
// same argument; the analyses that read rules' text (fold.go, quiet path)
// take ghctl for ctl (actionName).
const ctlActionName = "ghctl"

// actionName is an action's name as the rule analyses read it: lowercased,
// ghctl read as the ctl it stands for.
func actionName(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == ctlActionName {
		return "ctl"
	}
	return n
}

// renameCtlByTag gives the CRS's ctl:ruleRemoveTargetByTag to ghctl,
// when ghctl can read Coraza's rule list (ctlWorks).
func renameCtlByTag(s string) string {
	if !ctlWorks() {
		return s
	}
	return strings.ReplaceAll(s, "ctl:ruleRemoveTargetByTag=", ctlActionName+":ruleRemoveTargetByTag=")
}

// ctlWorks reports whether taggedRules reads the rule list of this
// Coraza's transactions; if not, the CRS keeps Coraza's own ctl.
var ctlWorks = sync.OnceValue(func() bool {
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(`SecAction "id:1,phase:1,pass,nolog,tag:'t'"`))
	if err != nil {
		return false
	}
	tx := w.NewTransaction()
	defer tx.Close()
	ts, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return false
	}
	if _, ok := ts.(targetRemover); !ok {
		return false
	}
	ids, err := taggedRules(ts, "t")
	return err == nil && slices.Equal(ids, []int{1})
})

var ctlOnce sync.Once

func registerCtl() {
	ctlOnce.Do(func() { plugins.RegisterAction(ctlActionName, func() plugintypes.Action { return &tagCtl{} }) })
}

// tagCtl is one ghctl action.
type tagCtl struct {
	tag   string
	col   variables.RuleVariable
	key   string
	keyRx *regexp.Regexp

	once sync.Once
	ids  []int // the rules tagged tag, in the rule set's order
	err  error
}

// Init parses the argument as Coraza's parseCtl does.
func (a *tagCtl) Init(_ plugintypes.RuleMetadata, data string) error {
	action, val, ok := strings.Cut(data, "=")
	if !ok || action != "ruleRemoveTargetByTag" {
		return fmt.Errorf("waf: %s supports ruleRemoveTargetByTag only, not %q", ctlActionName, data)
	}
	value, col, ok := strings.Cut(val, ";")
	var colname, colkey string
	if ok {
		colname, colkey, _ = strings.Cut(col, ":")
		colkey = strings.TrimSpace(colkey)
	}
	a.col, _ = variables.Parse(strings.TrimSpace(colname))
	if isRx, pattern := hasRegex(colkey); isRx {
		if pattern == "" {
			return fmt.Errorf("waf: empty regex pattern in ctl collection key")
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return fmt.Errorf("waf: invalid regex in ctl collection key: %w", err)
		}
		a.keyRx = re
		colkey = ""
	} else {
		colkey = strings.ToLower(colkey)
	}
	a.tag, a.key = value, colkey
	return nil
}

// hasRegex is Coraza 3.8.1's internal/strings.HasRegex: s between
// unescaped slashes.
func hasRegex(s string) (bool, string) {
	if len(s) < 2 || s[0] != '/' {
		return false, s
	}
	last := len(s) - 1
	if s[last] != '/' {
		return false, s
	}
	if last == 1 {
		return true, ""
	}
	n := 0
	for i := last - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	if n%2 == 0 {
		return true, s[1:last]
	}
	return false, s
}

func (a *tagCtl) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

// targetRemover is the method of Coraza's transaction behind
// ctl:ruleRemoveTargetBy*.
type targetRemover interface {
	RemoveRuleTargetByID(id int, variable variables.RuleVariable, key string, keyRx *regexp.Regexp)
}

func (a *tagCtl) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	a.once.Do(func() { a.ids, a.err = taggedRules(tx, a.tag) })
	if a.err != nil {
		// Unreachable when ctlWorks (the rename depends on it).
		tx.DebugLogger().Error().Err(a.err).Msg("waf: " + ctlActionName)
		return
	}
	rm := tx.(targetRemover)
	for _, id := range a.ids {
		rm.RemoveRuleTargetByID(id, a.col, a.key, a.keyRx)
	}
}

// taggedRules returns the ids of the rules of tx's rule set whose tags
// hold tag, in the order of tx.WAF.Rules.GetRules(): what Coraza's ctl
// walks.
func taggedRules(tx plugintypes.TransactionState, tag string) ([]int, error) {
	v := reflect.ValueOf(tx)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("transaction %T", tx)
	}
	w := v.Elem().FieldByName("WAF")
	if !w.IsValid() || w.Kind() != reflect.Pointer || w.IsNil() {
		return nil, fmt.Errorf("transaction %T has no WAF", tx)
	}
	rg := w.Elem().FieldByName("Rules")
	if !rg.IsValid() || !rg.CanAddr() {
		return nil, fmt.Errorf("WAF of %T has no Rules", tx)
	}
	get := rg.Addr().MethodByName("GetRules")
	if !get.IsValid() || get.Type().NumIn() != 0 || get.Type().NumOut() != 1 || get.Type().Out(0).Kind() != reflect.Slice {
		return nil, fmt.Errorf("rule group of %T has no GetRules", tx)
	}
	rules := get.Call(nil)[0]
	ids := []int{}
	for i := range rules.Len() {
		r := rules.Index(i)
		id, tags := r.FieldByName("ID_"), r.FieldByName("Tags_")
		if !id.IsValid() || id.Kind() != reflect.Int || !tags.IsValid() || !tags.CanInterface() {
			return nil, fmt.Errorf("rule of %T: no ID_ or Tags_", tx)
		}
		t, ok := tags.Interface().([]string)
		if !ok {
			return nil, fmt.Errorf("rule of %T: Tags_ is %s", tx, tags.Type())
		}
		if slices.Contains(t, tag) {
			ids = append(ids, int(id.Int()))
		}
	}
	return ids, nil
}
