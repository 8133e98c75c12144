package wssecurity

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", xmlsigtest.NewCA(t, "cfg CA").CertPEM())
	notPEM := writeFile(t, dir, "bad.pem", []byte("hello"))
	users := writeFile(t, dir, "users.txt", []byte("# users\nalice:pw\nbob:{base64}AAEC\n"))
	badUsers := writeFile(t, dir, "bad-users.txt", []byte("alice:pw\ncarol\n"))
	hashUsers := writeFile(t, dir, "hash-users.txt", []byte("alice:$2y$05$abcdefghijklmnopqrstuv\n"))
	ut := "username_token:\n  users: [{username: alice, password: pw}]\n"
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"nothing", "require: any\n", 1, "", "configure username_token, x509 or both"},
		{"unknown field", ut + "keep_securityheader: true\n", 3, "keep_securityheader", `unknown field "keep_securityheader"`},
		{"bad require", ut + "require: everything\n", 3, "require", "require must be any"},
		{"require x509 without x509", ut + "require: x509\n", 3, "require", "needs x509"},
		{"max_age too long", ut + "timestamp: {max_age: 2h}\n", 3, "timestamp.max_age", "between 1s and 1h"},
		{"future_skew too long", ut + "timestamp:\n  future_skew: 6m\n", 4, "timestamp.future_skew", "between 0s and 5m"},
		{"no users", "username_token: {digest: true}\n", 1, "username_token", "needs users or users_file"},
		{"empty username", "username_token:\n  users:\n    - {username: '', password: pw}\n", 3, "users[0].username", "username is required"},
		{"colon in username", "username_token:\n  users:\n    - {username: 'a:b', password: pw}\n", 3, "users[0].username", "contains ':'"},
		{"no password", "username_token:\n  users:\n    - {username: alice}\n", 3, "users[0].password", "password is required"},
		{"password from unset env", "username_token:\n  users:\n    - username: alice\n      password: {env: WSS_TEST_UNSET_VARIABLE}\n", 4, "password.env", "is not set"},
		{"bad base64 password", "username_token:\n  users:\n    - {username: alice, password: '!!', encoding: base64}\n", 3, "users[0].password", "not base64"},
		{"bad encoding", "username_token:\n  users:\n    - {username: alice, password: pw, encoding: hex}\n", 3, "users[0].encoding", "encoding must be"},
		{"duplicate user", "username_token:\n  users:\n    - {username: alice, password: pw}\n    - {username: alice, password: pw2}\n", 4, "users[1].username", "listed twice"},
		{"bad text", "username_token:\n  text: sometimes\n  users: [{username: alice, password: pw}]\n", 2, "username_token.text", "tls_only, allowed or forbidden"},
		{"accepts nothing", "username_token:\n  digest: false\n  text: forbidden\n  users: [{username: alice, password: pw}]\n", 1, "username_token", "accept no UsernameToken"},
		{"users file missing", "username_token:\n  users_file: /nonexistent/users.txt\n", 2, "users_file", "no such file"},
		{"users file bad line", "username_token:\n  users_file: " + badUsers + "\n", 2, "users_file", ":2: want username:password"},
		{"users file hash", "username_token:\n  users_file: " + hashUsers + "\n", 2, "users_file", "hashes are not supported"},
		{"users file duplicate", "username_token:\n  users: [{username: alice, password: pw}]\n  users_file: " + users + "\n", 3, "users_file", "defined twice"},
		{"x509 without trust", "x509: {subjects: [CN=x]}\n", 1, "x509.trust", "needs trust.ca_file"},
		{"ca file not pem", "x509:\n  trust: {ca_file: " + notPEM + "}\n", 2, "x509.trust.ca_file", "holds no PEM certificate"},
		{"empty subject", "x509:\n  trust: {ca_file: " + ca + "}\n  subjects: ['']\n", 3, "x509.subjects[0]", "empty subject"},
		{"bad required part", ut + "signature:\n  required_parts: [Body, Header]\n", 4, "required_parts[1]", "is not Body, Timestamp"},
		{"bad algorithm", ut + "signature:\n  algorithms: [rsa-sha256, md5]\n", 4, "algorithms[1]", `unknown algorithm "md5"`},
		{"no digest algorithm", ut + "signature:\n  algorithms: [rsa-sha256]\n", 4, "signature.algorithms", "one digest"},
		{"max references", ut + "signature: {max_references: 100}\n", 3, "max_references", "between 1 and 64"},
		{"max body", ut + "max_body_bytes: 10B\n", 3, "max_body_bytes", "between 1KiB and 64MiB"},
		{"empty actor", ut + "actors: ['']\n", 3, "actors[0]", "empty actor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	users := writeFile(t, dir, "users.txt", []byte("# users\n\nalice:pw:with:colons\nbob:{base64}AAEC\n"))
	s, err := decode(policytest.Node(t, "username_token:\n  users_file: "+users+"\n"), store.NewMemory(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !s.tsRequired || s.maxAge != 300*time.Second || s.futureSkew != 60*time.Second {
		t.Errorf("timestamp defaults: %v %v %v", s.tsRequired, s.maxAge, s.futureSkew)
	}
	if !s.ut.digest || s.ut.text != textTLSOnly || s.require != requireAny || s.keepHeader || !s.sigReplay {
		t.Errorf("defaults: %+v %+v", s, s.ut)
	}
	if s.algs != xmlsig.DefaultAlgorithms || !s.parts.body || !s.parts.timestamp || s.parts.usernameToken {
		t.Errorf("signature defaults: %v %+v", s.algs, s.parts)
	}
	if got := string(s.ut.users["alice"]); got != "pw:with:colons" {
		t.Errorf("alice = %q", got)
	}
	if got := s.ut.users["bob"]; string(got) != "\x00\x01\x02" {
		t.Errorf("bob = %q", got)
	}
	s, err = decode(policytest.Node(t, "username_token:\n  users_file: "+users+"\nsignature:\n  required_parts: [Timestamp, UsernameToken, '{urn:x}Account']\n  algorithms: [rsa-sha1, sha1]\n"), store.NewMemory(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !s.parts.body || !s.parts.usernameToken || len(s.parts.headers) != 1 || s.parts.headers[0] != (qname{"urn:x", "Account"}) {
		t.Errorf("parts %+v", s.parts)
	}
	if s.algs != xmlsig.SignatureRSASHA1|xmlsig.DigestSHA1 {
		t.Errorf("algs %b", s.algs)
	}
}
