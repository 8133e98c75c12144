package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keys"
)

func TestKeysGenerateAndJWKS(t *testing.T) {
	for _, alg := range []string{"ES256", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "identity.pem")
			var stdout, stderr bytes.Buffer
			if code := run([]string{"keys", "generate", "--alg", alg, "--out", out}, &stdout, &stderr); code != 0 {
				t.Fatalf("generate: exit %d: %s", code, &stderr)
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if mode := fi.Mode().Perm(); mode != 0o600 {
				t.Errorf("key file mode %o, want 600", mode)
			}
			k, err := keys.Load(out, alg, "")
			if err != nil {
				t.Fatalf("the written key does not load: %v", err)
			}
			if !strings.Contains(stdout.String(), "kid "+k.KeyID()) {
				t.Errorf("stdout %q does not name kid %s", &stdout, k.KeyID())
			}

			stdout.Reset()
			if code := run([]string{"keys", "jwks", "--key", out}, &stdout, &stderr); code != 0 {
				t.Fatalf("jwks: exit %d: %s", code, &stderr)
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(stdout.Bytes(), &set); err != nil {
				t.Fatalf("jwks output %q: %v", &stdout, err)
			}
			if len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID != k.KeyID() || set.Keys[0].Algorithm != alg {
				t.Fatalf("jwks output %s", &stdout)
			}
			// What the key signs verifies with the printed set.
			tok, err := k.Sign([]byte("payload"), "JWT")
			if err != nil {
				t.Fatal(err)
			}
			sig, err := jose.ParseSignedCompact(string(tok), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := sig.Verify(set.Keys[0]); err != nil || string(got) != "payload" {
				t.Errorf("verify with the printed JWKS: %q, %v", got, err)
			}
		})
	}
}

func TestKeysGenerateRefusesOverwrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "k.pem")
	writeFile(t, out, "precious")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "generate", "--out", out}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "refusing to overwrite") {
		t.Errorf("stderr %q", &stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Errorf("the existing file was changed to %q", b)
	}
}

func TestKeysErrors(t *testing.T) {
	dir := t.TempDir()
	es256 := filepath.Join(dir, "es256.pem")
	var sink bytes.Buffer
	if code := run([]string{"keys", "generate", "--out", es256}, &sink, &sink); code != 0 {
		t.Fatalf("generate: %s", &sink)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, "not a key")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no subcommand", []string{"keys"}, 2, "", "usage"},
		{"unknown subcommand", []string{"keys", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"rotate without config", []string{"keys", "rotate"}, 2, "", "usage: gatehouse keys rotate --config FILE"},
		{"help", []string{"keys", "help"}, 0, "keys generate", ""},
		{"generate without out", []string{"keys", "generate", "--alg", "ES256"}, 2, "", "usage"},
		{"generate HMAC", []string{"keys", "generate", "--alg", "HS256", "--out", filepath.Join(dir, "h.pem")}, 1, "", `"HS256"`},
		{"generate none", []string{"keys", "generate", "--alg", "none", "--out", filepath.Join(dir, "n.pem")}, 1, "", `"none"`},
		{"generate bad flag", []string{"keys", "generate", "--size", "4096"}, 2, "", "flag provided but not defined"},
		{"generate into missing dir", []string{"keys", "generate", "--out", filepath.Join(dir, "no", "k.pem")}, 1, "", "no such file"},
		{"jwks without key", []string{"keys", "jwks"}, 2, "", "usage"},
		{"jwks missing file", []string{"keys", "jwks", "--key", filepath.Join(dir, "nope.pem")}, 1, "", "no such file"},
		{"jwks not a key", []string{"keys", "jwks", "--key", garbage}, 1, "", "no PEM private key"},
		{"jwks unfit alg", []string{"keys", "jwks", "--key", es256, "--alg", "RS256"}, 1, "", "RS256 needs an RSA key"},
		{"jwks given kid", []string{"keys", "jwks", "--key", es256, "--kid", "k-1"}, 0, `"kid": "k-1"`, ""},
		{"jwks extra arg", []string{"keys", "jwks", "--key", es256, "extra"}, 2, "", "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("run(%v) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout containing %q, stderr containing %q",
					tc.args, code, &stdout, &stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "h.pem")); err == nil {
		t.Error("a refused generate left a file")
	}
}
