package config

import (
	"errors"
	"strings"
	"testing"
)

const stsGood = `listeners:
  - address: ":8080"
sts:
  issuer: https://gw.example/sts
  insecure_plaintext_keys: true
  token_lifetime: 30m
  authentication:
    username_token:
      users: [{username: alice, password: secret}]
  subjects:
    - {subject: alice, roles: [reader], groups: [staff], email: alice@example.com}
  relying_parties:
    - {audience: "urn:products", one_time_use: true, token_lifetime: 5m}
routes:
` + goodRoute

func TestLoadSTS(t *testing.T) {
	c, err := LoadBytes("sts.yaml", []byte(stsGood), nil)
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	s := c.STS
	if s == nil {
		t.Fatal("got no sts section")
	}
	if s.Issuer != "https://gw.example/sts" || s.TokenLifetime.Std().Minutes() != 30 {
		t.Errorf("got issuer %q lifetime %v", s.Issuer, s.TokenLifetime)
	}
	if s.Authentication.IsZero() || s.Authentication.Line() != 7 {
		t.Errorf("got authentication node at line %d, want the raw node at line 7", s.Authentication.Line())
	}
	if len(s.Subjects) != 1 || s.Subjects[0].Email != "alice@example.com" || s.Subjects[0].Roles[0] != "reader" {
		t.Errorf("got subjects %+v", s.Subjects)
	}
	if rp := s.RelyingParties; len(rp) != 1 || !rp[0].OneTimeUse || rp[0].TokenLifetime.Std().Minutes() != 5 {
		t.Errorf("got relying parties %+v", rp)
	}
}

func TestLoadSTSErrors(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		wantLine       int
		wantPath       string
		wantMsg        string
	}{
		{"unknown field", "  token_lifetime: 30m\n", "  token_lifetime: 30m\n  lifetime: 1h\n", 7, "sts.lifetime", "unknown field"},
		{"relative issuer", "issuer: https://gw.example/sts", "issuer: /sts", 4, "sts.issuer", "absolute URI"},
		{"bad signature", "  token_lifetime: 30m\n", "  token_lifetime: 30m\n  signature: rsa-sha1\n", 7, "sts.signature", "rsa-sha1"},
		{"no key protection", "  insecure_plaintext_keys: true\n", "", 3, "sts.key_encryption_key", "required"},
		{"key without certificate", "  insecure_plaintext_keys: true\n", "  key_file: k.pem\n", 5, "sts.key_file", "go together"},
		{"lifetime too long", "token_lifetime: 30m", "token_lifetime: 48h", 6, "sts.token_lifetime", "between 1m and 24h"},
		{"duplicate audience", "    - {audience: \"urn:products\", one_time_use: true, token_lifetime: 5m}\n",
			"    - {audience: \"urn:products\"}\n    - {audience: \"urn:products\"}\n", 14, "sts.relying_parties[1].audience", "duplicate"},
		{"duplicate subject", "    - {subject: alice, roles: [reader], groups: [staff], email: alice@example.com}\n",
			"    - {subject: alice}\n    - {subject: alice}\n", 12, "sts.subjects[1].subject", "duplicate"},
		{"no relying parties", "  relying_parties:\n    - {audience: \"urn:products\", one_time_use: true, token_lifetime: 5m}\n", "", 3, "sts.relying_parties", "at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(stsGood, tc.from, tc.to, 1)
			if src == stsGood {
				t.Fatalf("the case does not change the config")
			}
			_, err := LoadBytes("sts.yaml", []byte(src), nil)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want config Errors", err)
			}
			for _, e := range errs {
				if strings.Contains(e.Path, tc.wantPath) && strings.Contains(e.Msg, tc.wantMsg) {
					if e.Line != tc.wantLine {
						t.Errorf("got line %d, want %d (%v)", e.Line, tc.wantLine, e)
					}
					return
				}
			}
			t.Fatalf("got %v, want an error at %s: %s", err, tc.wantPath, tc.wantMsg)
		})
	}
}
