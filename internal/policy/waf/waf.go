// Package waf is the "waf" policy: the OWASP Core Rule Set (CRS 4) run
// in-process by Coraza on every request of a route, made several times
// faster than stock Coraza with CRS by loading only what the route needs
// and by pre-filtering regular expressions (see docs/policies/waf.md).
package waf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Unit registers the waf policy.
var Unit = policy.Unit{Name: "waf", New: New}

// Denial codes. Which rules matched is logged, never sent.
const (
	// Code refuses a request whose anomaly score reached the threshold,
	// or that a custom directive denied.
	Code = "waf_blocked"
	// CodeBadBody refuses a request whose inspected body does not parse
	// as its content type says (malformed JSON or XML, bad multipart).
	CodeBadBody = "waf_invalid_body"
)

// WAF inspects requests with the CRS. It is immutable and safe for
// concurrent use; its compiled rules are shared by every route with the
// same settings and survive reloads that keep them.
type WAF struct {
	engine  coraza.WAF
	gate    *gateSet  // nil without
	quiet   *quietSet // nil: every request runs the rules
	release func() error
	s       *settings
	log     *slog.Logger
	route   string
	matches *telemetry.WAFMatches
}

var (
	_ policy.Policy = (*WAF)(nil)
	_ policy.Closer = (*WAF)(nil)
)

// New builds a WAF from cfg (see Config). The rules are compiled here, at
// load time (a few hundred milliseconds for the CRS); a bad directive is a
// config error at the directives field.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	s, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	seclang := directives(s)
	sum := sha256.Sum256([]byte(seclang))
	key := "waf:" + hex.EncodeToString(sum[:])
	eng, release, err := usagepool.Acquire(env.Pool, key, func() (*shared, error) {
		w, g, err := newEngineGate(seclang, engineOpts{fast: true, gate: true, extra: s.directives, paranoia: s.paranoia, cutPL: cutLevel(s)})
		if err != nil {
			return nil, err
		}
		return &shared{WAF: w, gate: g}, nil
	})
	if err != nil {
		field := ""
		if len(s.directives) > 0 {
			field = "directives"
		}
		return nil, cfg.Errorf(field, "%v", err)
	}
	w := &WAF{
		engine:  eng.WAF,
		gate:    eng.gate,
		release: release,
		s:       s,
		log:     env.Log(),
		route:   env.Route.Name,
		matches: env.Telemetry().WAF(env.Route.Name, s.mode),
	}
	if eng.gate != nil {
		w.quiet = eng.calibrated(w)
	}
	return w, nil
}

// shared is a compiled WAF in the usage pool.
type shared struct {
	coraza.WAF
	gate *gateSet
	// quiet are the calibrated quiet paths (quiet.go), by what feeding a
	// request depends on: routes sharing the rules share them too, and
	// 10,000 such routes calibrate once.
	mu    sync.Mutex
	quiet map[feedKey]*quietSet
}

// feedKey is what WAF.feedHeaders reads of the settings.
type feedKey struct{ query, headers, cookies bool }

// calibrated returns the quiet path for w's settings, calibrating it on
// first use; nil when there is none.
func (s *shared) calibrated(w *WAF) *quietSet {
	k := feedKey{w.s.inspect.query, w.s.inspect.headers, w.s.inspect.cookies}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.quiet[k]; ok {
		return q
	}
	if s.quiet == nil {
		s.quiet = map[feedKey]*quietSet{}
	}
	q := w.calibrate(s.gate.quiet)
	s.quiet[k] = q
	return q
}

func (s *shared) Close() error {
	if c, ok := s.WAF.(experimental.WAFCloser); ok {
		return c.Close()
	}
	return nil
}

// Close releases the compiled rules.
func (w *WAF) Close() error { return w.release() }

// Apply feeds the request to the rules: connection, method, URI (with the
// query when inspected), headers (all, or only those the body processor
// needs), cookies, then the body when its content type is inspected. In
// block mode a request reaching the anomaly threshold is refused with 403
// waf_blocked; a malformed inspected body with 400 waf_invalid_body; a
// body over body_limit with 413 body_too_large. In detect mode nothing is
// refused, matches are logged and counted. The response is never fed to
// the rules.
func (w *WAF) Apply(_ context.Context, ex *policy.Exchange) error {
	tx := w.engine.NewTransactionWithID(ex.RequestID)
	fed := false
	if w.quiet != nil {
		switch w.tryQuiet(ex, tx) {
		case quietProved:
			tx.Close()
			return nil
		case quietFed:
			fed = true
		case quietUsedUp:
			tx.Close()
			tx = w.engine.NewTransactionWithID(ex.RequestID)
		}
	}
	defer tx.Close()
	it, err := w.feed(ex, tx, fed)
	if err != nil {
		return err
	}
	return w.verdict(ex, tx, it)
}

// Outcomes of tryQuiet.
const (
	quietNo     = iota // not tried; tx has been fed nothing
	quietFed           // not proved; tx has been fed the headers only
	quietProved        // the rules would neither log nor interrupt
	quietUsedUp        // not proved, and tx has run some rules
)

// tryQuiet feeds a bodiless request's connection, URI and headers to tx
// and tries the quiet path (quiet.go) on it.
func (w *WAF) tryQuiet(ex *policy.Exchange, tx types.Transaction) int {
	r := ex.Request
	if w.s.inspect.body && inspectedBody(r.Header.Get("Content-Type")) {
		return quietNo
	}
	w.feedHeaders(r, ex.ClientIP.String(), tx)
	ts, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return quietFed
	}
	proved, rest := w.quiet.check(ts, nil)
	switch {
	case !proved:
		return quietFed
	case len(rest) == 0, w.quiet.alone(tx, rest):
		return quietProved
	}
	return quietUsedUp
}

// feed runs the request through tx's request phases and returns the
// interruption, if any; err is an internal failure or the body's. fed
// means tx already has the connection, URI and headers (tryQuiet).
func (w *WAF) feed(ex *policy.Exchange, tx types.Transaction, fed bool) (*types.Interruption, error) {
	r := ex.Request
	if !fed {
		w.feedHeaders(r, ex.ClientIP.String(), tx)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil
	}
	if w.s.inspect.body && inspectedBody(r.Header.Get("Content-Type")) {
		body, err := ex.Body(w.s.inspect.bodyLimit)
		if err != nil {
			return nil, err
		}
		if len(body) > 0 {
			if it, _, err := tx.WriteRequestBody(body); it != nil || err != nil {
				return it, err
			}
		}
	}
	return tx.ProcessRequestBody()
}

// feedHeaders gives tx the request's connection, URI and headers (all,
// or only those the body processor needs).
func (w *WAF) feedHeaders(r *http.Request, clientIP string, tx types.Transaction) {
	port := 0
	if _, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		port, _ = strconv.Atoi(p)
	}
	tx.ProcessConnection(clientIP, port, "", 0)
	uri := r.URL.RequestURI()
	if !w.s.inspect.query {
		uri = r.URL.EscapedPath()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	tx.AddRequestHeader("Host", r.Host)
	for name, values := range r.Header {
		if !w.keepHeader(name) {
			continue
		}
		for _, v := range values {
			tx.AddRequestHeader(name, v)
		}
	}
}

// keepHeader reports whether a request header is fed to the rules.
func (w *WAF) keepHeader(name string) bool {
	switch name {
	case "Cookie":
		return w.s.inspect.cookies
	case "Content-Type", "Content-Length", "Transfer-Encoding":
		// The body processor and the protocol rules need them.
		return true
	}
	return w.s.inspect.headers
}

// inspectedBody reports whether bodies of content type ct are parsed by a
// body processor: JSON, XML (SOAP 1.1 and 1.2 included), urlencoded forms
// and multipart. Other bodies (images, archives) are neither read nor
// inspected; CRS rule 920420 still checks the type against its allowed
// list.
func inspectedBody(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct != ""
	}
	switch {
	case mt == "application/json", mt == "application/x-www-form-urlencoded",
		mt == "multipart/form-data", mt == "text/xml", mt == "application/xml",
		mt == "application/soap+xml",
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	return false
}

// verdict turns the transaction's outcome into the policy's: logs and
// counts the matches, and refuses when the rules interrupted.
func (w *WAF) verdict(ex *policy.Exchange, tx types.Transaction, it *types.Interruption) error {
	tx.ProcessLogging()
	var ids []int
	var msgs []string
	wouldBlock := false
	for _, m := range tx.MatchedRules() {
		rule := m.Rule()
		id := rule.ID()
		if !logged(m) {
			continue
		}
		if id == 949110 {
			wouldBlock = true
		}
		ids = append(ids, id)
		msgs = append(msgs, m.Message())
		w.matches.Inc(family(id))
	}
	if it == nil {
		if len(ids) > 0 {
			w.log.Info("waf: rules matched", "request_id", ex.RequestID, "mode", w.s.mode,
				"would_block", wouldBlock, "rule_ids", ids, "messages", msgs)
		}
		return nil
	}
	w.log.Warn("waf: request blocked", "request_id", ex.RequestID, "status", it.Status,
		"rule_id", it.RuleID, "rule_ids", ids, "messages", msgs)
	reason := &blockReason{rule: it.RuleID, ids: ids}
	if it.Status == http.StatusBadRequest {
		return policy.Deny(http.StatusBadRequest, CodeBadBody, "request body could not be parsed").WithErr(reason)
	}
	if it.Status == http.StatusRequestEntityTooLarge {
		return policy.Deny(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large").WithErr(reason)
	}
	return policy.Deny(http.StatusForbidden, Code, "request blocked by the web application firewall").WithErr(reason)
}

// logged reports whether a matched rule is one the policy logs and
// counts: it has a message and is not nolog. Bookkeeping rules with a
// message but nolog (901340, "Enabling body inspection", matches every
// bodiless request) are neither. Coraza's MatchedRule has Log, its
// interface not yet; a match without it counts as logged.
func logged(m types.MatchedRule) bool {
	if m.Message() == "" {
		return false
	}
	if l, ok := m.(interface{ Log() bool }); ok {
		return l.Log()
	}
	return true
}

// family is a rule's CRS file number ("942" for SQL injection), "custom"
// for rules outside the CRS's range.
func family(id int) string {
	if id >= 900000 && id < 1000000 {
		return strconv.Itoa(id / 1000)
	}
	return "custom"
}

// blockReason is the logged cause of a refusal.
type blockReason struct {
	rule int
	ids  []int
}

func (r *blockReason) Error() string {
	var b strings.Builder
	b.WriteString("waf: interrupted by rule ")
	b.WriteString(strconv.Itoa(r.rule))
	if len(r.ids) > 0 {
		b.WriteString(", matched")
		for _, id := range r.ids {
			b.WriteByte(' ')
			b.WriteString(strconv.Itoa(id))
		}
	}
	return b.String()
}
