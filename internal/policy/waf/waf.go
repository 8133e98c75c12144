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

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
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
	gate    *gateSet // nil without
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
		return &shared{w, g}, nil
	})
	if err != nil {
		field := ""
		if len(s.directives) > 0 {
			field = "directives"
		}
		return nil, cfg.Errorf(field, "%v", err)
	}
	return &WAF{
		engine:  eng.WAF,
		gate:    eng.gate,
		release: release,
		s:       s,
		log:     env.Log(),
		route:   env.Route.Name,
		matches: env.Telemetry().WAF(env.Route.Name, s.mode),
	}, nil
}

// shared is a compiled WAF in the usage pool.
type shared struct {
	coraza.WAF
	gate *gateSet
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
	defer tx.Close()
	it, err := w.feed(ex, tx)
	if err != nil {
		return err
	}
	return w.verdict(ex, tx, it)
}

// feed runs the request through tx's request phases and returns the
// interruption, if any; err is an internal failure or the body's.
func (w *WAF) feed(ex *policy.Exchange, tx types.Transaction) (*types.Interruption, error) {
	r := ex.Request
	port := 0
	if _, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		port, _ = strconv.Atoi(p)
	}
	tx.ProcessConnection(ex.ClientIP.String(), port, "", 0)
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
		if m.Message() == "" {
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
