package users

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, doc string
		line      int
		want      string
	}{
		{"unknown field", "users:\n  - username: a\n    password_hash: " + h + "\n    pasword: x\n", 4, "pasword"},
		{"unknown top", "people: []\n", 1, "people"},
		{"duplicate", "users:\n  - username: a\n    password_hash: " + h + "\n  - username: a\n    password_hash: " + h + "\n", 4, "duplicate username"},
		{"no hash", "users:\n  - username: a\n", 2, "password_hash: required"},
		{"bad hash", "users:\n  - username: a\n    password_hash: sha256:00\n", 2, "argon2id PHC"},
		{"huge memory", "users:\n  - username: a\n    password_hash: $argon2id$v=19$m=9999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n", 2, "parameters"},
		{"space in name", "users:\n  - username: a b\n    password_hash: " + h + "\n", 2, "spaces"},
		{"not a mapping", "users:\n  - alice\n", 2, "mapping"},
		{"repeated field", "users:\n  - username: a\n    username: b\n    password_hash: " + h + "\n", 3, "repeated"},
		{"duplicate sub", "users:\n  - username: a\n    password_hash: " + h + "\n  - username: b\n    sub: a\n    password_hash: " + h + "\n", 4, "duplicate sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("users.yaml", []byte(tc.doc))
			var ue *Error
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ue.Line != tc.line || !strings.Contains(ue.Msg, tc.want) || !strings.HasPrefix(err.Error(), "users.yaml:") {
				t.Errorf("err = %v, want line %d containing %q", err, tc.line, tc.want)
			}
		})
	}
}

func TestAddAndAuthenticate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(p, []byte("# the demo's people\nusers:\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, pw string }{{"alice", "alice-password"}, {"bob", "bob-password"}} {
		h, err := HashPassword(u.pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := Add(p, User{Username: u.name, PasswordHash: h, Email: u.name + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := HashPassword("x")
	if err := Add(p, User{Username: "alice", PasswordHash: h}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("adding alice twice: %v", err)
	}
	data, _ := os.ReadFile(p)
	if !strings.Contains(string(data), "# the demo's people") {
		t.Errorf("the comment was lost:\n%s", data)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Fatalf("%d users", s.Len())
	}
	if u, ok := s.Authenticate("alice", "alice-password"); !ok || u.Sub() != "alice" || u.Email != "alice@example.com" || u.Line() == 0 {
		t.Errorf("alice: %v %v", u, ok)
	}
	for _, c := range [][2]string{{"alice", "bob-password"}, {"carol", "alice-password"}, {"alice", ""}} {
		if _, ok := s.Authenticate(c[0], c[1]); ok {
			t.Errorf("%q/%q authenticated", c[0], c[1])
		}
	}
}

func TestEmptyFile(t *testing.T) {
	s, err := Parse("u.yaml", nil)
	if err != nil || s.Len() != 0 {
		t.Fatalf("%v %v", s, err)
	}
}
