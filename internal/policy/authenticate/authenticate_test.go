package authenticate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// headerAuth is a small real authenticator for these tests: it accepts the
// value of one header if it equals the configured secret.
type headerAuth struct {
	header, secret, challenge string
	closed                    *bool
}

func (a *headerAuth) Authenticate(_ context.Context, ex *policy.Exchange) (*policy.Principal, error) {
	v := ex.Request.Header.Get(a.header)
	switch {
	case v == "":
		return nil, authn.ErrNoCredentials
	case v == "boom":
		return nil, errors.New("key server unreachable")
	case v != a.secret:
		return nil, authn.InvalidToken("r", "Bearer", "bad credential", nil)
	}
	return &policy.Principal{Subject: a.header + "-user", Method: a.header}, nil
}

func (a *headerAuth) Challenge() string { return a.challenge }

func (a *headerAuth) Close() error {
	if a.closed != nil {
		*a.closed = true
	}
	return nil
}

type headerConfig struct {
	Header    string `yaml:"header"`
	Secret    string `yaml:"secret"`
	Challenge string `yaml:"challenge"`
}

var closed bool

func testRegistry() *authn.Registry {
	return authn.NewRegistry(authn.Unit{Name: "header", New: func(cfg *config.Node, env *authn.Env) (authn.Authenticator, error) {
		var c headerConfig
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
		if c.Header == "" {
			return nil, cfg.Errorf("header", "required")
		}
		return &headerAuth{header: c.Header, secret: c.Secret, challenge: c.Challenge, closed: &closed}, nil
	}})
}

func build(t *testing.T, yaml string) *Policy {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env(), testRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

const twoAuths = `
realm: api
with:
  - header: {header: X-A, secret: a, challenge: 'Bearer realm="api"'}
  - header: {header: X-B, secret: b}
`

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		headers  map[string]string
		subject  string // want this principal
		status   int    // or this denial status
		code     string
		internal bool // or an internal error
	}{
		{"first recognises", twoAuths, map[string]string{"X-A": "a"}, "X-A-user", 0, "", false},
		{"first not mine, second decides", twoAuths, map[string]string{"X-B": "b"}, "X-B-user", 0, "", false},
		{"bad credential stops the chain", twoAuths, map[string]string{"X-A": "wrong", "X-B": "b"}, "", 401, "invalid_token", false},
		{"internal failure fails closed", twoAuths, map[string]string{"X-A": "boom", "X-B": "b"}, "", 0, "", true},
		{"no credentials", twoAuths, nil, "", 401, "missing_credentials", false},
		{"optional lets anonymous through", "optional: true\n" + twoAuths, nil, "", 0, "", false},
		{"optional still refuses bad credentials", "optional: true\n" + twoAuths, map[string]string{"X-B": "x"}, "", 401, "invalid_token", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := build(t, tc.yaml)
			r := httptest.NewRequest("GET", "http://x/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			ex := policytest.Exchange(r)
			err := p.Apply(context.Background(), ex)
			d, isDenial := policy.AsDenial(err)
			switch {
			case tc.internal:
				if err == nil || isDenial {
					t.Fatalf("err = %v, want an internal error", err)
				}
			case tc.status != 0:
				if !isDenial || d.StatusCode() != tc.status || d.Code != tc.code {
					t.Fatalf("err = %v, want denial %d %s", err, tc.status, tc.code)
				}
				if ex.Principal != nil {
					t.Errorf("principal set on a denial: %+v", ex.Principal)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got := subject(ex.Principal); got != tc.subject {
					t.Errorf("subject = %q, want %q", got, tc.subject)
				}
			}
		})
	}
}

func subject(p *policy.Principal) string {
	if p == nil {
		return ""
	}
	return p.Subject
}

func TestChallengeWithoutCredentials(t *testing.T) {
	p := build(t, twoAuths)
	err := p.Apply(context.Background(), policytest.Exchange(httptest.NewRequest("GET", "http://x/", nil)))
	d, _ := policy.AsDenial(err)
	// RFC 6750 §3.1: the challenge carries no error code when no credentials came.
	if got := d.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != `Bearer realm="api"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if d.Header.Get("WWW-Authenticate") != `Bearer realm="api"` || http.StatusText(d.StatusCode()) != "Unauthorized" {
		t.Errorf("denial %+v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"no authenticators", "realm: api\n", 0, "with", "at least one authenticator"},
		{"unknown authenticator", "with:\n  - kerberos: {}\n", 2, "with[0]", `unknown authenticator "kerberos"`},
		{"authenticator's own error", "with:\n  - header:\n      secret: x\n", 2, "with[0].header", "header: required"},
		{"unknown field", "realm: api\nmode: strict\nwith: []\n", 2, "mode", "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tc.yaml), policytest.Env(), testRegistry())
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v, want a config error", err)
			}
			if tc.line != 0 && cerr.Line != tc.line {
				t.Errorf("line = %d, want %d (%v)", cerr.Line, tc.line, err)
			}
			if !strings.Contains(cerr.Error(), tc.path) || !strings.Contains(cerr.Error(), tc.msg) {
				t.Errorf("err = %v, want %q and %q", err, tc.path, tc.msg)
			}
		})
	}
}

func TestCloseClosesAuthenticators(t *testing.T) {
	closed = false
	p := build(t, twoAuths)
	if err := p.Close(); err != nil || !closed {
		t.Errorf("Close = %v, closed = %v", err, closed)
	}
}

func TestAuthorizationToken(t *testing.T) {
	tests := []struct {
		header []string
		scheme string
		value  string
		err    string // "none", "denial" or ""
	}{
		{nil, "", "", "none"},
		{[]string{"Bearer abc.def.ghi"}, "Bearer", "abc.def.ghi", ""},
		{[]string{"bearer abc"}, "Bearer", "abc", ""},
		{[]string{"DPoP abc"}, "DPoP", "abc", ""},
		{[]string{"Basic dXNlcjpwYXNz"}, "", "", "none"},
		{[]string{"Bearer"}, "", "", "denial"},
		{[]string{"Bearer a b"}, "", "", "denial"},
		{[]string{"Bearer abc==="}, "Bearer", "abc===", ""},
		{[]string{"Bearer ab=c"}, "", "", "denial"},
		{[]string{"Bearer a", "Bearer b"}, "", "", "denial"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "http://x/", nil)
		for _, h := range tc.header {
			r.Header.Add("Authorization", h)
		}
		tok, err := authn.AuthorizationToken(r, "api")
		_, isDenial := policy.AsDenial(err)
		switch tc.err {
		case "none":
			if !errors.Is(err, authn.ErrNoCredentials) {
				t.Errorf("%q: err = %v, want ErrNoCredentials", tc.header, err)
			}
		case "denial":
			if !isDenial {
				t.Errorf("%q: err = %v, want a denial", tc.header, err)
			}
		default:
			if err != nil || tok.Scheme != tc.scheme || tok.Value != tc.value {
				t.Errorf("%q: got %+v, %v", tc.header, tok, err)
			}
		}
	}
}
