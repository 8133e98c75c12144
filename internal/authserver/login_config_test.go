package authserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestLoginConfigErrors: end-user login settings fail at load with the
// file, line and field; a bad users file names its own file and line.
func TestLoginConfigErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(usersFile(t)), 0o600)
	os.WriteFile(filepath.Join(dir, "bad-users.yaml"), []byte("users:\n  - username: carol\n    password: plain\n"), 0o600)
	head := "listeners: [{address: \"127.0.0.1:0\"}]\nauthorization_server:\n  issuer: https://as.example\n  key_encryption_key: " + testKEK + "\n"
	web := "  clients:\n    - client_id: web\n      secret_hash: " + sha256Hex(webSecret) + "\n      grant_types: [authorization_code]\n"
	spa := "  clients:\n    - client_id: spa\n      auth_methods: [none]\n"
	for _, tc := range []struct {
		name, body string
		line       int
		path, msg  string
	}{
		{"no redirect_uris", "  users_file: users.yaml\n" + web, 7, "authorization_server.clients[0].redirect_uris", "required"},
		{"no users file", web + "      redirect_uris: [https://app.example/cb]\n", 2, "authorization_server.users_file", "required"},
		{"http redirect", "  users_file: users.yaml\n" + web + "      redirect_uris: [http://app.example/cb]\n", 10, "authorization_server.clients[0].redirect_uris[0]", "loopback"},
		{"fragment", "  users_file: users.yaml\n" + web + "      redirect_uris: [https://app.example/cb#x]\n", 10, "authorization_server.clients[0].redirect_uris[0]", "fragment"},
		{"relative redirect", "  users_file: users.yaml\n" + web + "      redirect_uris: [/cb]\n", 10, "authorization_server.clients[0].redirect_uris[0]", "absolute"},
		{"bad post-logout", "  users_file: users.yaml\n" + web + "      redirect_uris: [https://app.example/cb]\n      post_logout_redirect_uris: [javascript:alert(1)]\n", 11, "authorization_server.clients[0].post_logout_redirect_uris[0]", "private-use"},
		{"public with secret", "  users_file: users.yaml\n" + spa + "      secret_hash: " + sha256Hex(webSecret) + "\n      grant_types: [authorization_code]\n      redirect_uris: [https://app.example/cb]\n", 8, "authorization_server.clients[0].auth_methods", "no credentials"},
		{"public client credentials", "  users_file: users.yaml\n" + spa + "      grant_types: [client_credentials]\n", 9, "authorization_server.clients[0].grant_types[0]", "public client"},
		{"none with another method", "  users_file: users.yaml\n  clients:\n    - client_id: spa\n      auth_methods: [none, client_secret_basic]\n      grant_types: [authorization_code]\n      redirect_uris: [https://app.example/cb]\n", 8, "authorization_server.clients[0].auth_methods[0]", "excludes"},
		{"refresh without code", web[:len(web)-len("[authorization_code]\n")] + "[refresh_token]\n", 8, "authorization_server.clients[0].grant_types", "needs authorization_code"},
		{"bad users file", "  users_file: bad-users.yaml\n" + web + "      redirect_uris: [https://app.example/cb]\n", 5, "authorization_server.users_file", "bad-users.yaml:3: field password not found"},
		{"missing users file", "  users_file: nope.yaml\n" + web + "      redirect_uris: [https://app.example/cb]\n", 5, "authorization_server.users_file", "nope.yaml"},
		{"session lifetime", "  users_file: users.yaml\n  login:\n    session_lifetime: 1000h\n" + web + "      redirect_uris: [https://app.example/cb]\n", 7, "authorization_server.login.session_lifetime", "720h"},
		{"federation without issuer", "  login:\n    federation:\n      client_id: gh\n" + web + "      redirect_uris: [https://app.example/cb]\n", 6, "authorization_server.login.federation.issuer", "required"},
		{"federation http issuer", "  login:\n    federation:\n      issuer: http://idp.corp.example\n      client_id: gh\n" + web + "      redirect_uris: [https://app.example/cb]\n", 7, "authorization_server.login.federation.issuer", "allow_http"},
		{"federation without client", "  login:\n    federation:\n      issuer: https://idp.corp.example\n" + web + "      redirect_uris: [https://app.example/cb]\n", 6, "authorization_server.login.federation.client_id", "required"},
		{"federation scopes without openid", "  login:\n    federation:\n      issuer: https://idp.corp.example\n      client_id: gh\n      scopes: [email]\n" + web + "      redirect_uris: [https://app.example/cb]\n", 9, "authorization_server.login.federation.scopes", "openid"},
		{"federation unknown field", "  login:\n    federation:\n      issuer: https://idp.corp.example\n      client_id: gh\n      claims: {mail: email}\n" + web + "      redirect_uris: [https://app.example/cb]\n", 9, "authorization_server.login.federation.claims.mail", "unknown field"},
		{"federation redirect path", "  login:\n    federation:\n      issuer: https://idp.corp.example\n      client_id: gh\n      redirect_path: callback\n" + web + "      redirect_uris: [https://app.example/cb]\n", 9, "authorization_server.login.federation.redirect_path", "starting with /"},
		{"federation on another endpoint", "  login:\n    federation:\n      issuer: https://idp.corp.example\n      client_id: gh\n      redirect_path: /oauth2/token\n" + web + "      redirect_uris: [https://app.example/cb]\n", 9, "authorization_server.login.federation.redirect_path", "another endpoint"},
		{"federation without login", "  login:\n    federation:\n      issuer: https://idp.corp.example\n      client_id: gh\n  clients:\n    - client_id: a\n      secret_hash: " + sha256Hex(readerSecret) + "\n", 6, "authorization_server.login.federation", "nobody would log in"},
		{"users file without login", "  users_file: users.yaml\n  clients:\n    - client_id: a\n      secret_hash: " + sha256Hex(readerSecret) + "\n", 5, "authorization_server.users_file", "nobody would log in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "g.yaml")
			cfg, err := config.LoadBytes(file, []byte(head+tc.body), nil)
			if err == nil {
				_, err = newSettings(cfg.AuthorizationServer, cfg, dir)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a config error", err)
			}
			if ce.File != file || ce.Line != tc.line || ce.Path != tc.path || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got %s:%d %s: %s, want line %d %s containing %q", ce.File, ce.Line, ce.Path, ce.Msg, tc.line, tc.path, tc.msg)
			}
		})
	}
}
