package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Backend is what the admin API reads and acts on: the gateway. Every
// method is safe for concurrent use.
type Backend interface {
	// Config returns the effective config, secrets redacted.
	Config() (map[string]any, error)
	// Routes returns the routes and their policies, in config order.
	Routes() []Route
	// Consumers returns the known consumers (API keys, OAuth clients, and
	// callers seen recently) with their recent traffic and, where a
	// policy reports it, their limit and quota usage.
	Consumers(ctx context.Context) []Consumer
	// Tokens returns what is known of issued and revoked tokens.
	Tokens() Tokens
	// Keys returns the signing keys; ErrNotConfigured without an
	// authorization server.
	Keys() (Keys, error)
	// Decision returns the recorded decision of a request id.
	Decision(id string) (Decision, bool)
	// Decisions returns recent decisions matching f, newest first.
	Decisions(f DecisionFilter, limit int) []Decision
	// Stats returns the traffic of the last minutes.
	Stats() Stats
	// Reload reloads the config from its source; ErrNotConfigured when
	// the gateway was given none.
	Reload(ctx context.Context) error
	// RotateKeys rotates the authorization server's signing key.
	RotateKeys(ctx context.Context) error
	// RefreshKeySets fetches every remote key set (the JWKS of the
	// issuers jwt authenticators trust) now, and returns each outcome.
	RefreshKeySets(ctx context.Context) []KeySetRefresh
	// Revoke revokes a token by its jti or whole.
	Revoke(ctx context.Context, req RevokeRequest) (Revoked, error)
}

// ErrNotConfigured is returned for actions on parts the gateway does not
// run (no authorization server, no config source to reload from).
var ErrNotConfigured = errors.New("admin: not configured")

// Route is a route and its chain.
type Route struct {
	Name       string   `json:"name"`
	Protocol   string   `json:"protocol"`
	Hosts      []string `json:"hosts,omitempty"`
	Path       string   `json:"path,omitempty"`
	PathPrefix string   `json:"path_prefix,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	Upstream   string   `json:"upstream"`
	Policies   []string `json:"policies"`
}

// Consumer is a caller known to the gateway.
type Consumer struct {
	Name string `json:"name"`
	// Sources says where it is known from: apikey, oauth_client, traffic.
	Sources []string `json:"sources"`
	Tier    string   `json:"tier,omitempty"`
	// Requests, Denied and RateLimited count its requests among the
	// recent decisions held in memory.
	Requests    int     `json:"requests"`
	Denied      int     `json:"denied"`
	RateLimited int     `json:"rate_limited"`
	Usage       []Usage `json:"usage,omitempty"`
}

// Usage is a consumer's use of one limit or quota (policy.Usage: the
// limit policies report it, the admin API shows it).
type Usage = policy.Usage

// UsageReporter is implemented by limit policies that can tell how much of
// its allowance a consumer has used (policy.UsageReporter).
type UsageReporter = policy.UsageReporter

// Tokens are the tokens the gateway knows of.
type Tokens struct {
	// Issued are the access tokens the authorization server issued, from
	// the audit events held in memory (the server keeps no list of them:
	// tokens are self-contained JWTs).
	Issued []IssuedToken `json:"issued"`
	// Revoked are the token ids refused until their expiry.
	Revoked []RevokedToken `json:"revoked"`
	// Note says where the lists come from.
	Note string `json:"note"`
}

// IssuedToken is an issued token's metadata, never the token.
type IssuedToken struct {
	JTI      string    `json:"jti"`
	ClientID string    `json:"client_id"`
	Subject  string    `json:"subject,omitempty"`
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires,omitzero"`
	KeyID    string    `json:"kid,omitempty"`
	Kind     string    `json:"kind"` // token_issue, sts_issue
	Revoked  bool      `json:"revoked"`
}

// RevokedToken is a revoked token id.
type RevokedToken struct {
	JTI   string    `json:"jti"`
	Until time.Time `json:"until"`
}

// Keys are the authorization server's signing keys.
type Keys struct {
	Issuer string          `json:"issuer"`
	Active string          `json:"active_kid"`
	Keys   []KeyInfo       `json:"keys"`
	JWKS   json.RawMessage `json:"jwks"`
}

// KeyInfo is one key's id and rotation times.
type KeyInfo struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Created   time.Time `json:"created"`
	Activated time.Time `json:"activated,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
	Active    bool      `json:"active"`
}

// KeySetRefresh is the outcome of refreshing one remote key set.
type KeySetRefresh struct {
	// Source is the JWKS URL, or the issuer whose discovery names it.
	Source string `json:"source"`
	// Keys is the number of keys in the set now (the last good set when
	// the fetch failed).
	Keys int `json:"keys"`
	// Error is why the fetch failed; absent when it succeeded.
	Error string `json:"error,omitempty"`
}

// Decision is what the gateway did with one request and why.
type Decision struct {
	RequestID string    `json:"request_id"`
	Time      time.Time `json:"time"`
	Method    string    `json:"method,omitempty"`
	Host      string    `json:"host,omitempty"`
	Path      string    `json:"path,omitempty"`
	Route     string    `json:"route,omitempty"`
	ClientIP  string    `json:"client_ip,omitempty"`
	Principal string    `json:"principal,omitempty"`
	Consumer  string    `json:"consumer,omitempty"`
	// Decision is allow, deny, error, no_route or authserver.
	Decision string `json:"decision"`
	Status   int    `json:"status"`
	Code     string `json:"code,omitempty"`
	// Policy is the policy that refused or failed.
	Policy string `json:"policy,omitempty"`
	// Detail is what the client was told.
	Detail string `json:"detail,omitempty"`
	// Cause is the internal cause: shown only here, on the privileged
	// admin API, never to clients.
	Cause      string          `json:"cause,omitempty"`
	DurationMS float64         `json:"duration_ms"`
	Policies   []PolicyVerdict `json:"policies"`
	// Source is "memory" (the decision ring) or "audit_log" (only the
	// audit events of the request were found).
	Source string        `json:"source"`
	Events []audit.Event `json:"events,omitempty"`
}

// PolicyVerdict is one policy's verdict in a chain.
type PolicyVerdict struct {
	Policy     string  `json:"policy"`
	Verdict    string  `json:"verdict"` // allow, deny, error
	DurationMS float64 `json:"duration_ms"`
}

// DecisionFilter selects decisions; zero fields match all.
type DecisionFilter struct {
	Decision string
	Route    string
	Code     string
}

// Stats is the recent traffic, per second.
type Stats struct {
	Now      time.Time `json:"now"`
	Interval int       `json:"interval_seconds"`
	// Times are the Unix seconds of the points, oldest first.
	Times    []int64 `json:"times"`
	Requests []int64 `json:"requests"`
	Denied   []int64 `json:"denied"`
	Errors   []int64 `json:"errors"`
	// DenialsByCode are per-second denials of each code in the window.
	DenialsByCode map[string][]int64 `json:"denials_by_code"`
	// Totals since start.
	TotalRequests int64            `json:"total_requests"`
	TotalDenied   int64            `json:"total_denied"`
	TotalByCode   map[string]int64 `json:"total_by_code"`
}

// RevokeRequest names the token to revoke: by JTI (with Until, or the
// longest token lifetime when zero) or the whole Token (an access token
// of the embedded authorization server).
type RevokeRequest struct {
	JTI   string    `json:"jti,omitempty"`
	Token string    `json:"token,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// Revoked says what was revoked.
type Revoked struct {
	JTI   string    `json:"jti"`
	Until time.Time `json:"until"`
}

// api serves /api/v1.
type api struct {
	b     Backend
	audit *audit.Log
}

// endpoint is one route of the API; endpoints is the list both the mux
// and the OpenAPI test read.
type endpoint struct {
	method, path string
	handler      func(a *api) http.HandlerFunc
}

var endpoints = []endpoint{
	{"GET", "/api/v1/config", func(a *api) http.HandlerFunc { return a.getConfig }},
	{"GET", "/api/v1/routes", func(a *api) http.HandlerFunc { return a.getRoutes }},
	{"GET", "/api/v1/consumers", func(a *api) http.HandlerFunc { return a.getConsumers }},
	{"GET", "/api/v1/tokens", func(a *api) http.HandlerFunc { return a.getTokens }},
	{"GET", "/api/v1/keys", func(a *api) http.HandlerFunc { return a.getKeys }},
	{"GET", "/api/v1/decisions", func(a *api) http.HandlerFunc { return a.getDecisions }},
	{"GET", "/api/v1/decisions/{request_id}", func(a *api) http.HandlerFunc { return a.getDecision }},
	{"GET", "/api/v1/stats", func(a *api) http.HandlerFunc { return a.getStats }},
	{"GET", "/api/v1/audit", func(a *api) http.HandlerFunc { return a.getAudit }},
	{"POST", "/api/v1/reload", func(a *api) http.HandlerFunc { return a.postReload }},
	{"POST", "/api/v1/keys/rotate", func(a *api) http.HandlerFunc { return a.postRotate }},
	{"POST", "/api/v1/keys/refresh", func(a *api) http.HandlerFunc { return a.postRefresh }},
	{"POST", "/api/v1/tokens/revoke", func(a *api) http.HandlerFunc { return a.postRevoke }},
	{"GET", "/api/v1/openapi.json", func(*api) http.HandlerFunc { return getOpenAPI }},
}

func (a *api) routes(mux *http.ServeMux, wrap func(http.HandlerFunc) http.Handler) {
	for _, e := range endpoints {
		mux.Handle(e.method+" "+e.path, wrap(e.handler(a)))
	}
}

func getOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(openapiJSON)
}

func (a *api) getConfig(w http.ResponseWriter, _ *http.Request) {
	c, err := a.b.Config()
	if err != nil {
		problem(w, http.StatusInternalServerError, "internal_error", "the config could not be rendered")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *api) getRoutes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"routes": a.b.Routes()})
}

func (a *api) getConsumers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"consumers": a.b.Consumers(r.Context())})
}

func (a *api) getTokens(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.b.Tokens())
}

func (a *api) getKeys(w http.ResponseWriter, _ *http.Request) {
	k, err := a.b.Keys()
	if errors.Is(err, ErrNotConfigured) {
		problem(w, http.StatusNotFound, "not_configured", "no authorization_server is configured")
		return
	}
	if err != nil {
		problem(w, http.StatusInternalServerError, "internal_error", "the keys could not be read")
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (a *api) getDecision(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("request_id")
	if d, ok := a.b.Decision(id); ok {
		writeJSON(w, http.StatusOK, d)
		return
	}
	// Older than the ring: what the audit log knows.
	ev, err := a.audit.Search(id)
	if err != nil || len(ev) == 0 {
		problem(w, http.StatusNotFound, "not_found", "no decision is known for this request id")
		return
	}
	d := Decision{RequestID: id, Source: "audit_log", Events: ev, Policies: []PolicyVerdict{}}
	last := ev[len(ev)-1]
	d.Time, d.Route, d.Principal, d.ClientIP = last.Time, last.Route, last.Principal, ipString(last.ClientIP.String())
	d.Code, d.Policy, d.Detail, d.Status = last.Code, last.Policy, last.Detail, last.Status
	if last.Kind == audit.Denial || last.Kind == audit.AuthFailure {
		d.Decision = "deny"
	}
	writeJSON(w, http.StatusOK, d)
}

func ipString(s string) string {
	if s == "invalid IP" {
		return ""
	}
	return s
}

func (a *api) getDecisions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := DecisionFilter{Decision: q.Get("decision"), Route: q.Get("route"), Code: q.Get("code")}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": a.b.Decisions(f, limitParam(r, 50, 1000))})
}

func (a *api) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.b.Stats())
}

func (a *api) getAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{Kind: audit.Kind(q.Get("kind")), Route: q.Get("route"), Code: q.Get("code"), RequestID: q.Get("request_id")}
	ev := a.audit.Recent(f, limitParam(r, 100, 2000))
	if ev == nil {
		ev = []audit.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": ev})
}

func limitParam(r *http.Request, def, maxN int) int {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, maxN)
}

func (a *api) postReload(w http.ResponseWriter, r *http.Request) {
	err := a.b.Reload(r.Context())
	a.record(r, "reload", err)
	switch {
	case errors.Is(err, ErrNotConfigured):
		problem(w, http.StatusNotImplemented, "not_configured", "this gateway has no config file to reload from")
	case err != nil:
		// The config's own errors (file:line: field: message) are what an
		// operator needs, and this API is privileged.
		problem(w, http.StatusUnprocessableEntity, "reload_failed", err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]string{"result": "reloaded"})
	}
}

func (a *api) postRotate(w http.ResponseWriter, r *http.Request) {
	err := a.b.RotateKeys(r.Context())
	a.record(r, "keys.rotate", err)
	switch {
	case errors.Is(err, ErrNotConfigured):
		problem(w, http.StatusNotFound, "not_configured", "no authorization_server is configured")
	case err != nil:
		problem(w, http.StatusServiceUnavailable, "rotation_failed", err.Error())
	default:
		k, _ := a.b.Keys()
		writeJSON(w, http.StatusOK, map[string]string{"result": "rotated", "active_kid": k.Active})
	}
}

// postRefresh fetches every remote key set now: an operator who learns
// that an issuer withdrew a key need not wait for the next refresh. 200
// when every fetch succeeded (also when there is none), 502
// refresh_failed naming the sources that failed otherwise; those keep
// their last good set.
func (a *api) postRefresh(w http.ResponseWriter, r *http.Request) {
	res := a.b.RefreshKeySets(r.Context())
	if res == nil {
		res = []KeySetRefresh{}
	}
	var failed []string
	for _, k := range res {
		if k.Error != "" {
			failed = append(failed, k.Source+": "+k.Error)
		}
	}
	var err error
	if len(failed) > 0 {
		err = errors.New(strings.Join(failed, "; "))
	}
	a.record(r, "keys.refresh", err)
	body := map[string]any{"result": "refreshed", "key_sets": res}
	status := http.StatusOK
	if err != nil {
		// A problem, with the outcomes beside it: the sources that did
		// refresh did.
		status = http.StatusBadGateway
		body = map[string]any{
			"type": "urn:gatehouse:error:refresh_failed", "title": http.StatusText(status), "status": status,
			"code": "refresh_failed", "detail": "some key sets could not be fetched and keep their last good keys: " + err.Error(),
			"key_sets": res,
		}
	}
	if err != nil {
		// writeJSON keeps a Content-Type already set.
		w.Header().Set("Content-Type", "application/problem+json")
	}
	writeJSON(w, status, body)
}

func (a *api) postRevoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object {jti} or {token}")
		return
	}
	if (req.JTI == "") == (req.Token == "") {
		problem(w, http.StatusBadRequest, "invalid_request", "give exactly one of jti and token")
		return
	}
	res, err := a.b.Revoke(r.Context(), req)
	ev := audit.Event{Kind: audit.TokenRevoke, RequestID: r.Header.Get("X-Request-Id"), Action: "tokens.revoke",
		JTI: res.JTI, Expires: res.Until, Result: "success", Policy: "admin_api", Principal: principal(r), Detail: "revoked through the admin API"}
	if err != nil {
		ev.Result, ev.Detail = "failure", "revocation through the admin API failed"
	}
	a.audit.Record(ev)
	a.record(r, "tokens.revoke", err)
	switch {
	case errors.Is(err, ErrNotConfigured):
		problem(w, http.StatusNotFound, "not_configured", "revoking a whole token needs the authorization_server")
	case err != nil:
		problem(w, http.StatusBadRequest, "revocation_failed", "the token is not a valid token of this gateway's authorization server")
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// record writes an admin_action audit event.
func (a *api) record(r *http.Request, action string, err error) {
	e := audit.Event{Kind: audit.AdminAction, Action: action, Result: "success", Principal: principal(r), Policy: "admin_api"}
	if err != nil {
		e.Result = "failure"
	}
	a.audit.Record(e)
}

// principal names who called the admin API: the client certificate's
// subject, "token" or "loopback".
func principal(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return "mtls:" + r.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		return "admin-token"
	}
	return "loopback"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// problem writes an RFC 9457 problem.
func problem(w http.ResponseWriter, status int, code, detail string) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "urn:gatehouse:error:" + code, "title": http.StatusText(status), "status": status, "code": code, "detail": detail,
	})
}
