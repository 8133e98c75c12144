package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/users"
)

func TestUsersAdd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	add := func(pw string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cmdUsers(append([]string{"add", "--file", path}, args...), strings.NewReader(pw), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := add("alice-password\n", "--email", "alice@example.com", "--groups", "staff, admins", "alice"); code != 0 {
		t.Fatalf("add alice: %d %s", code, out)
	}
	if code, out := add("bob-password\n", "bob"); code != 0 {
		t.Fatalf("add bob: %d %s", code, out)
	}
	for _, tc := range []struct {
		pw   string
		args []string
		code int
		want string
	}{
		{"x\n", []string{"carol"}, 2, "at least 8"},
		{"alice-password\n", []string{"alice"}, 1, "already exists"},
		{"long-enough\n", []string{"a b"}, 2, "spaces"},
		{"long-enough\n", nil, 2, "usage"},
	} {
		if code, out := add(tc.pw, tc.args...); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("users add %v: %d %q, want %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", st, err)
	}
	set, err := users.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := set.Authenticate("alice", "alice-password")
	if !ok || u.Email != "alice@example.com" || strings.Join(u.Groups, ",") != "staff,admins" {
		t.Errorf("alice: %+v %v", u, ok)
	}
	if _, ok := set.Authenticate("bob", "bob-password"); !ok {
		t.Error("bob does not log in")
	}
}
