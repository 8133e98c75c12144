package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Route label values of the gateway's own token services: their requests
// are counted in gatehouse_requests_total and
// gatehouse_request_duration_seconds under these names, not under "" (no
// route matched).
const (
	RouteAuthServer = "authserver"
	RouteSTS        = "sts"
)

// Label values of the token services' metrics that the metrics start
// with at zero. Other values (an OAuth error code added later) are
// counted too, from their first occurrence.
var (
	// ClientAuthFailureReasons are the reason label's values of
	// gatehouse_authserver_client_auth_failures_total.
	ClientAuthFailureReasons = []string{"missing_credentials", "malformed", "unknown_client", "invalid_secret",
		"invalid_assertion", "invalid_certificate", "rate_limited", "other"}
	// ExchangeSubjectTypes are the subject_token_type label's values of
	// gatehouse_authserver_token_exchanges_total (RFC 8693 token types,
	// without their urn:ietf:params:oauth:token-type: prefix; "other" for
	// a missing or unsupported one).
	ExchangeSubjectTypes = []string{"access_token", "jwt", "saml2"}
	// ExchangeOutcomes are its outcome label's values: "issued" or the
	// OAuth error code of the refusal.
	ExchangeOutcomes = []string{"issued", "invalid_request", "invalid_grant", "invalid_target", "invalid_scope",
		"unauthorized_client", "invalid_dpop_proof", "temporarily_unavailable", "server_error"}
	// STSOperations are the operation label's values of
	// gatehouse_sts_requests_total: the WS-Trust request types, and
	// "unknown" for a request refused before its type was read (too
	// large, not a RequestSecurityToken, over the failure budget).
	STSOperations = []string{"issue", "validate", "renew", "cancel", "unknown"}
	// STSOutcomes are its outcome label's values: "success", "invalid" (a
	// Validate answered with the invalid status) or the WS-Trust fault
	// code.
	STSOutcomes = []string{"success", "invalid", "InvalidRequest", "FailedAuthentication", "RequestFailed",
		"InvalidSecurityToken", "BadRequest", "ExpiredData", "InvalidScope", "UnableToRenew"}
)

// tokenMetrics are the collectors of the authorization server and the STS.
type tokenMetrics struct {
	issued       *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	exchanges    *prometheus.CounterVec
	introspected *prometheus.CounterVec
	rotations    *prometheus.CounterVec
	sts          *prometheus.CounterVec
}

func newTokenMetrics() tokenMetrics {
	t := tokenMetrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authserver_tokens_issued_total",
			Help: "Access tokens issued by the authorization server, by grant type and client id.",
		}, []string{"grant", "client"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authserver_client_auth_failures_total",
			Help: "Client authentications refused by the authorization server (token, introspection and revocation endpoints), by reason.",
		}, []string{"reason"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authserver_token_exchanges_total",
			Help: "RFC 8693 token exchanges by an authenticated client, by subject token type and outcome (issued, or the OAuth error code).",
		}, []string{"subject_token_type", "outcome"}),
		introspected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authserver_introspections_total",
			Help: "RFC 7662 introspections answered to an authenticated client, by result (active, inactive).",
		}, []string{"result"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authserver_key_rotations_total",
			Help: "Signing key rotations this instance made, by trigger (schedule; command: the admin API, `gatehouse keys rotate` or a changed algorithm).",
		}, []string{"trigger"}),
		sts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sts_requests_total",
			Help: "WS-Trust requests answered by the STS, by operation (issue, validate, renew, cancel, unknown) and outcome (success, invalid, or the WS-Trust fault code).",
		}, []string{"operation", "outcome"}),
	}
	for _, r := range ClientAuthFailureReasons {
		t.authFailures.WithLabelValues(r)
	}
	for _, s := range ExchangeSubjectTypes {
		for _, o := range ExchangeOutcomes {
			t.exchanges.WithLabelValues(s, o)
		}
	}
	t.exchanges.WithLabelValues("other", "invalid_request")
	for _, r := range []string{"active", "inactive"} {
		t.introspected.WithLabelValues(r)
	}
	for _, r := range []string{"schedule", "command"} {
		t.rotations.WithLabelValues(r)
	}
	for _, op := range STSOperations {
		for _, o := range STSOutcomes {
			switch {
			case op == "unknown" && o != "InvalidRequest" && o != "RequestFailed":
				continue // nothing else is decided before the type is read
			case o == "invalid" && op != "validate":
				continue
			}
			t.sts.WithLabelValues(op, o)
		}
	}
	return t
}

func (t tokenMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{t.issued, t.authFailures, t.exchanges, t.introspected, t.rotations, t.sts}
}

// AuthServerClient makes the issued-token counters of client, one per
// grant it may use, at zero: the authorization server calls it for each
// registered client when it is built. A nil m does nothing.
func (m *Metrics) AuthServerClient(client string, grants []string) {
	if m == nil {
		return
	}
	for _, g := range grants {
		m.tokens.issued.WithLabelValues(g, client)
	}
}

// TokenIssued counts an access token issued to client with grant. A nil
// m counts nothing.
func (m *Metrics) TokenIssued(grant, client string) {
	if m == nil {
		return
	}
	m.tokens.issued.WithLabelValues(grant, client).Inc()
}

// ClientAuthFailed counts a refused client authentication (reason: one of
// ClientAuthFailureReasons). A nil m counts nothing.
func (m *Metrics) ClientAuthFailed(reason string) {
	if m == nil {
		return
	}
	m.tokens.authFailures.WithLabelValues(reason).Inc()
}

// TokenExchanged counts a token exchange of subjectType (one of
// ExchangeSubjectTypes or "other") with outcome ("issued" or the OAuth
// error code). A nil m counts nothing.
func (m *Metrics) TokenExchanged(subjectType, outcome string) {
	if m == nil {
		return
	}
	m.tokens.exchanges.WithLabelValues(subjectType, outcome).Inc()
}

// Introspected counts an introspection answered active or inactive. A
// nil m counts nothing.
func (m *Metrics) Introspected(active bool) {
	if m == nil {
		return
	}
	r := "inactive"
	if active {
		r = "active"
	}
	m.tokens.introspected.WithLabelValues(r).Inc()
}

// KeyRotated counts a signing key rotation of the authorization server,
// scheduled or not. A nil m counts nothing.
func (m *Metrics) KeyRotated(scheduled bool) {
	if m == nil {
		return
	}
	t := "command"
	if scheduled {
		t = "schedule"
	}
	m.tokens.rotations.WithLabelValues(t).Inc()
}

// STSRequest counts a WS-Trust request answered by the STS. A nil m
// counts nothing.
func (m *Metrics) STSRequest(operation, outcome string) {
	if m == nil {
		return
	}
	m.tokens.sts.WithLabelValues(operation, outcome).Inc()
}
