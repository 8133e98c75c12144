package authn

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
)

func TestAuthorizationToken(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    Token
		wantErr string // "" ok, "none" ErrNoCredentials, else the Denial's code
	}{
		{"none", nil, Token{}, "none"},
		{"bearer", []string{"Bearer abc.DEF-_~+/9"}, Token{"Bearer", "abc.DEF-_~+/9"}, ""},
		{"scheme case", []string{"bEARER abc"}, Token{"Bearer", "abc"}, ""},
		{"dpop", []string{"DPoP abc"}, Token{"DPoP", "abc"}, ""},
		{"padding", []string{"Bearer YWJj=="}, Token{"Bearer", "YWJj=="}, ""},
		{"spaces before token", []string{"Bearer   abc"}, Token{"Bearer", "abc"}, ""},
		{"basic is not ours", []string{"Basic dXNlcjpwdw=="}, Token{}, "none"},
		{"no token", []string{"Bearer"}, Token{}, "invalid_request"},
		{"empty token", []string{"Bearer "}, Token{}, "invalid_request"},
		{"only padding", []string{"Bearer =="}, Token{}, "invalid_request"},
		{"padding in the middle", []string{"Bearer ab=c"}, Token{}, "invalid_request"},
		{"space inside", []string{"Bearer ab c"}, Token{}, "invalid_request"},
		{"quote", []string{`Bearer "abc"`}, Token{}, "invalid_request"},
		{"non-ASCII", []string{"Bearer ab\xc3\xa9"}, Token{}, "invalid_request"},
		{"two headers", []string{"Bearer a", "Bearer b"}, Token{}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := AuthorizationToken(r, "api")
			switch {
			case tt.wantErr == "":
				if err != nil || got != tt.want {
					t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
				}
			case tt.wantErr == "none":
				if !errors.Is(err, ErrNoCredentials) {
					t.Errorf("got %+v, %v; want ErrNoCredentials", got, err)
				}
			default:
				d, ok := policy.AsDenial(err)
				if !ok || d.Code != tt.wantErr || d.StatusCode() != 400 {
					t.Fatalf("got %+v, %v; want a 400 %s denial", got, err, tt.wantErr)
				}
				if ch := d.Header.Get("Www-Authenticate"); ch == "" {
					t.Error("no challenge")
				}
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		scheme, realm string
		attrs         []string
		want          string
	}{
		{"Bearer", "api", nil, `Bearer realm="api"`},
		{"Bearer", "api", []string{"error", "invalid_token", "error_description", ""}, `Bearer realm="api", error="invalid_token"`},
		{"DPoP", `a"b\c`, []string{"error", "x"}, `DPoP realm="a\"b\\c", error="x"`},
		{"Bearer", "api", []string{"error_description", "line\r\nSet-Cookie: x"}, `Bearer realm="api", error_description="lineSet-Cookie: x"`},
	}
	for _, tt := range tests {
		if got := Challenge(tt.scheme, tt.realm, tt.attrs...); got != tt.want {
			t.Errorf("Challenge(%q, %q, %q) = %s, want %s", tt.scheme, tt.realm, tt.attrs, got, tt.want)
		}
	}
}

// TestEnvPolicy: an authenticator built without a policy Env, or without
// any Env, reads fields and accessors of Policy() without checks.
func TestEnvPolicy(t *testing.T) {
	for _, e := range []*Env{nil, {Realm: "api"}} {
		p := e.Policy()
		if p == nil || p.Clock() == nil || p.Log() == nil || p.Telemetry() == nil || p.Store != nil {
			t.Errorf("Env %v: Policy() = %+v, want an empty policy Env", e, p)
		}
	}
	pe := &policy.Env{}
	if got := (&Env{Env: pe}).Policy(); got != pe {
		t.Error("Policy() did not return the Env's own policy Env")
	}
}
