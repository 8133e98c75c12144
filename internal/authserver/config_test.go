package authserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestConfigErrors: bad settings fail at load (config validation) or in
// New (files, hashes, keys), with the file, the line and the field.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "priv.jwks"), []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), 0o600)
	head := "listeners: [{address: \"127.0.0.1:0\"}]\nauthorization_server:\n"
	ok := "  issuer: https://as.example\n  key_encryption_key: " + testKEK + "\n"
	client := "  clients:\n    - client_id: a\n      secret_hash: " + sha256Hex(readerSecret) + "\n"
	for _, tc := range []struct {
		name, body string
		line       int
		path, msg  string
	}{
		{"no issuer", "  key_encryption_key: " + testKEK + "\n" + client, 2, "authorization_server.issuer", "required"},
		{"http issuer", "  issuer: http://as.example\n  key_encryption_key: " + testKEK + "\n" + client, 3, "authorization_server.issuer", "clear text"},
		{"trailing slash", "  issuer: https://as.example/\n  key_encryption_key: " + testKEK + "\n" + client, 3, "authorization_server.issuer", "slash"},
		{"no kek", "  issuer: https://as.example\n" + client, 2, "authorization_server.key_encryption_key", "required"},
		{"short kek", "  issuer: https://as.example\n  key_encryption_key: c2hvcnQ=\n" + client, 4, "authorization_server.key_encryption_key", "32"},
		{"bad alg", ok + "  algorithm: HS256\n" + client, 5, "authorization_server.algorithm", "HS256"},
		{"no clients", ok, 2, "authorization_server.clients", "at least one"},
		{"duplicate client", ok + client + "    - client_id: a\n      secret_hash: " + sha256Hex(readerSecret) + "\n", 8, "authorization_server.clients[1].client_id", "duplicate"},
		{"bad hash", ok + "  clients:\n    - client_id: a\n      secret_hash: md5:abc\n", 7, "authorization_server.clients[0].secret_hash", "sha256"},
		{"no credentials", ok + "  clients:\n    - client_id: a\n", 6, "authorization_server.clients[0]", "no credentials"},
		{"method without key", ok + client + "      auth_methods: [private_key_jwt]\n", 8, "authorization_server.clients[0].auth_methods[0]", "jwks_file"},
		{"unknown method", ok + client + "      auth_methods: [bogus]\n", 8, "authorization_server.clients[0].auth_methods[0]", "unknown"},
		{"unknown grant", ok + client + "      grant_types: [password]\n", 8, "authorization_server.clients[0].grant_types[0]", "unsupported"},
		{"symmetric client key", ok + "  clients:\n    - client_id: a\n      jwks_file: priv.jwks\n", 7, "authorization_server.clients[0].jwks_file", "symmetric"},
		{"unknown field", ok + client + "      secrett: x\n", 8, "authorization_server.clients[0].secrett", "unknown"},
		{"lifetime", ok + "  token_lifetime: 48h\n" + client, 5, "authorization_server.token_lifetime", "24h"},
		{"fixed registered claim", ok + client + "      claims: {dept: catalog, scope: admin}\n", 8, "authorization_server.clients[0].claims.scope", "set by the server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "g.yaml")
			cfg, err := config.LoadBytes(file, []byte(head+tc.body), nil)
			if err == nil {
				_, err = New(*cfg.AuthorizationServer, Deps{Store: nil, Config: cfg, BaseDir: dir})
				if err != nil && strings.Contains(err.Error(), "no state store") {
					_, err = newSettings(cfg.AuthorizationServer, cfg, dir)
				}
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

// TestSecretHashes checks both hash forms and the argon2id round trip.
func TestSecretHashes(t *testing.T) {
	h, err := HashSecret("demo-reader-secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash, secret string
		want               bool
	}{
		{"sha256 right", sha256Hex(readerSecret), readerSecret, true},
		{"sha256 wrong", sha256Hex(readerSecret), writerSecret, false},
		{"argon2id right", h, "demo-reader-secret", true},
		{"argon2id wrong", h, "demo-writer-secret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := parseSecretHash(tc.hash)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.verify(tc.secret); got != tc.want {
				t.Errorf("verify = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := parseSecretHash("$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"); err == nil {
		t.Error("an argon2id hash costing 95 GiB was accepted")
	}
}
