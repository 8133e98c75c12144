package authserver

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/google/go-cmp/cmp"
)

// counts reads the counter family name from m as label values joined
// by "," (in label-name order) -> value, for the series above zero.
func counts(t *testing.T, m *telemetry.Metrics, name string) map[string]float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if v := s.GetCounter().GetValue(); v > 0 {
				k := ""
				for i, l := range s.GetLabel() {
					if i > 0 {
						k += ","
					}
					k += l.GetValue()
				}
				out[k] = v
			}
		}
	}
	return out
}

// withMetrics gives e's server the metrics m, as the gateway does through
// Deps.Metrics.
func withMetrics(e *env, m *telemetry.Metrics) {
	e.srv.metrics = m
	e.srv.ring.rotated = m.KeyRotated
	e.srv.initMetrics()
}

// TestClientAuthFailureReasons sends a refused client authentication of
// each kind to the token endpoint and checks the reason each is counted
// under: the reasons are read from the errors authenticateClient makes
// (failureReason), and this holds the two together.
func TestClientAuthFailureReasons(t *testing.T) {
	e := newEnv(t, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  limits: {failures_per_client: 50, failures_per_ip: 100}\n  clients:"+baseClients(`
    - client_id: cert-client
      tls_client_auth_subject_dn: CN=cert-client
      scopes: [products:read]
      audience: [api://products]
`))
	m := telemetry.NewMetrics()
	withMetrics(e, m)
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	b64 := base64.RawURLEncoding.EncodeToString
	assertion := b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte(`{"sub":"reader"}`)) + ".c2ln"
	for _, c := range []struct {
		name, id, secret string
		form             url.Values
		hdr              []string
		reason           string
	}{
		{"nothing", "", "", cc, nil, "missing_credentials"},
		{"client_id alone", "", "", with("client_id", "reader"), nil, "missing_credentials"},
		{"bearer scheme", "", "", cc, []string{"Authorization", "Bearer abc"}, "malformed"},
		{"assertion not a JWS", "", "", with("client_assertion_type", clientAssertionType, "client_assertion", "x.y"), nil, "malformed"},
		{"unknown client", "nobody", "whatever-secret", cc, nil, "unknown_client"},
		{"wrong secret", "reader", "wrong-secret", cc, nil, "invalid_secret"},
		{"wrong post secret", "", "", with("client_id", "reader", "client_secret", "wrong"), nil, "invalid_secret"},
		{"assertion not allowed", "", "", with("client_assertion_type", clientAssertionType, "client_assertion", assertion), nil, "invalid_assertion"},
		{"no certificate", "", "", with("client_id", "cert-client"), nil, "invalid_certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := counts(t, m, "gatehouse_authserver_client_auth_failures_total")
			resp, body := e.post(PathToken, c.id, c.secret, c.form, c.hdr...)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%d %v, want 401", resp.StatusCode, body)
			}
			after := counts(t, m, "gatehouse_authserver_client_auth_failures_total")
			before[c.reason]++
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}

	// The failure budget spent: 429, rate_limited.
	limited := newEnv(t, "  issuer: ISSUER\n  key_encryption_key: "+testKEK+"\n  limits: {failures_per_client: 2, failures_per_ip: 100}\n  clients:"+baseClients(""))
	withMetrics(limited, m)
	for i := range 3 {
		resp, _ := limited.post(PathToken, "reader", "wrong-secret", cc)
		if want := []int{401, 401, 429}[i]; resp.StatusCode != want {
			t.Fatalf("attempt %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if got := counts(t, m, "gatehouse_authserver_client_auth_failures_total")["rate_limited"]; got != 1 {
		t.Errorf("rate_limited = %v, want 1", got)
	}
}

// TestTokenMetrics counts issued tokens by grant and client, exchange
// and introspection outcomes, and rotations by trigger.
func TestTokenMetrics(t *testing.T) {
	e := newEnv(t, defaultSection(""))
	m := telemetry.NewMetrics()
	withMetrics(e, m)

	tok := e.token("reader", readerSecret, "products:read")
	wtok := e.token("writer", writerSecret, "products:read")
	for _, tk := range []string{tok, "not-a-token"} {
		if resp, body := e.post(PathIntrospect, "writer", writerSecret, url.Values{"token": {tk}}); resp.StatusCode != 200 {
			t.Fatalf("introspect: %d %v", resp.StatusCode, body)
		}
	}
	exchange := func(subject, typ string) {
		t.Helper()
		e.post(PathToken, "writer", writerSecret, exchangeForm(subject, typ))
	}
	exchange(wtok, TokenTypeAccessToken)
	exchange("garbage", "urn:ietf:params:oauth:token-type:jwt")
	exchange(tok, "urn:example:unknown")
	// reader may not exchange: counted with its outcome too.
	e.post(PathToken, "reader", readerSecret, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {tok}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}})
	if err := e.srv.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The schedule's rotation, when the active key is due.
	e.clock.add(e.srv.s.rotation + time.Second)
	if err := e.srv.ring.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		want map[string]float64
	}{
		{"gatehouse_authserver_tokens_issued_total", map[string]float64{
			"reader,client_credentials": 1, "writer,client_credentials": 1,
			"writer,urn:ietf:params:oauth:grant-type:token-exchange": 1}},
		{"gatehouse_authserver_introspections_total", map[string]float64{"active": 1, "inactive": 1}},
		{"gatehouse_authserver_token_exchanges_total", map[string]float64{
			"issued,access_token": 1, "invalid_grant,jwt": 1, "invalid_request,other": 1, "unauthorized_client,access_token": 1}},
		{"gatehouse_authserver_key_rotations_total", map[string]float64{"command": 1, "schedule": 1}},
	} {
		if diff := cmp.Diff(c.want, counts(t, m, c.name)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}
