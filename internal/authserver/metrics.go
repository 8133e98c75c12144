package authserver

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The server's metrics (telemetry: gatehouse_authserver_*), kept apart
// from the protocol code so that each call site there is one line.

// initMetrics makes the series of the registered clients and their
// grants start at zero, so that the first token a client gets shows as
// an increase.
func (srv *Server) initMetrics() {
	for _, c := range srv.s.clientsSorted {
		srv.metrics.AuthServerClient(c.id, c.grants)
	}
}

// countFailure counts e when it refuses a client's authentication: 401
// invalid_client, or 429 once the failure budget is spent.
func (srv *Server) countFailure(e *oauthError) {
	switch {
	case e.status == http.StatusTooManyRequests && e.code == "slow_down":
		srv.metrics.ClientAuthFailed("rate_limited")
	case e.status == http.StatusUnauthorized:
		srv.metrics.ClientAuthFailed(failureReason(e))
	}
}

// failureReason classifies an invalid_client refusal for
// gatehouse_authserver_client_auth_failures_total. The client is told
// only "client authentication failed" (which client ids exist is not
// for it to learn); the reason is read from what authenticateClient and
// verifyClient put in the error, and TestClientAuthFailureReasons
// holds the two together. A refusal it does not know is "other".
func failureReason(e *oauthError) string {
	switch e.desc {
	case "client authentication is required":
		return "missing_credentials"
	case "malformed Basic credentials", "unsupported Authorization scheme", "malformed client assertion":
		return "malformed"
	}
	cause := errString(e.cause)
	switch {
	case strings.HasPrefix(cause, "unknown client"):
		return "unknown_client"
	case strings.HasPrefix(cause, config.AuthSecretBasic+":"), strings.HasPrefix(cause, config.AuthSecretPost+":"):
		return "invalid_secret"
	case strings.HasPrefix(cause, config.AuthPrivateKeyJWT):
		return "invalid_assertion"
	case strings.HasPrefix(cause, "no credentials"):
		return "missing_credentials"
	case strings.HasPrefix(cause, config.AuthTLSClient):
		return "invalid_certificate"
	}
	return "other"
}

// countGrant counts the outcome of a token request of an authenticated
// client, for the grants that have an outcome metric (token exchange).
func (srv *Server) countGrant(grant string, form url.Values, e *oauthError) {
	if grant != config.GrantTokenExchange {
		return
	}
	typ := "other"
	switch t := form.Get("subject_token_type"); t {
	case TokenTypeAccessToken, TokenTypeJWT, TokenTypeSAML2:
		typ = strings.TrimPrefix(t, "urn:ietf:params:oauth:token-type:")
	}
	outcome := "issued"
	if e != nil {
		outcome = e.code
	}
	srv.metrics.TokenExchanged(typ, outcome)
}

// countIntrospection counts an introspection answer and returns it.
func (srv *Server) countIntrospection(answer map[string]any) map[string]any {
	srv.metrics.Introspected(answer["active"] == true)
	return answer
}
