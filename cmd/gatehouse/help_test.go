package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHelpEveryCommand asks every command, and every group, for help in
// every spelling, with arguments that would make it act (a key file to
// write, a server to call) around the help flag: help goes to stdout, the
// exit code is 0, and nothing is done.
func TestHelpEveryCommand(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"access_token":"x","token_type":"bearer"}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, "listeners: [{address: \"127.0.0.1:0\"}]\nroutes: [{name: a, match: {path: /a}, upstream: {url: \"http://127.0.0.1:1\"}}]\n")

	// Arguments that would make each command act, were help not asked.
	acting := map[string][]string{
		"serve":         {"--config", cfgFile},
		"check":         {"--config", cfgFile},
		"demo":          {"--listen", "127.0.0.1:0"},
		"apikey create": {"--consumer", "billing"},
		"keys generate": {"--out", keyFile},
		"keys jwks":     {"--key", keyFile},
		"keys rotate":   {"--config", cfgFile},
		"keys refresh":  {"--admin", srv.URL},
		"token":         {"--issuer", srv.URL, "--client", "c", "--secret", "s"},
		"clients list":  {"--config", cfgFile},
		"explain":       {"abc", "--admin", srv.URL},
		"test":          {"--config", cfgFile, cfgFile},
		"healthcheck":   {"--url", srv.URL},
		"completion":    {"bash"},
	}
	type tc struct {
		name string
		args []string
		want string
	}
	var cases []tc
	groups := map[string]bool{}
	for _, c := range commands {
		words := strings.Fields(c.path)
		if len(words) > 1 {
			groups[words[0]] = true
		}
		want := "usage: gatehouse " + c.path
		if c.path == "help" {
			want = "Usage:\n  gatehouse serve" // help -h: the top-level help
		}
		a := acting[c.path]
		cases = append(cases,
			tc{c.path + " -h", append(append(append([]string{}, words...), a...), "-h"), want},
			tc{c.path + " --help", append(append(append([]string{}, words...), "--help"), a...), want},
			tc{c.path + " -help", append(append([]string{}, words...), "-help"), want},
			tc{"help " + c.path, append([]string{"help"}, words...), "usage: gatehouse " + c.path},
		)
	}
	for g := range groups {
		want := "usage: gatehouse " + g + " COMMAND"
		cases = append(cases,
			tc{g + " -h", []string{g, "-h"}, want},
			tc{g + " --help", []string{g, "--help"}, want},
			tc{g + " help", []string{g, "help"}, want},
			tc{"help " + g, []string{"help", g}, want},
		)
	}
	for _, a := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		cases = append(cases, tc{strings.Join(a, " "), a, "Usage:\n  gatehouse serve"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != 0 || !strings.Contains(stdout.String(), c.want) || stderr.Len() != 0 {
				t.Errorf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant 0 and stdout starting %q, empty stderr", c.args, code, &stdout, &stderr, c.want)
			}
			for _, leak := range []string{"secret:      ", "secret_hash: sha256:", "hash: \"sha256:", "complete -", "healthy:", "\"$schema\""} {
				if strings.Contains(stdout.String(), leak) {
					t.Errorf("run(%q) acted: stdout has %q:\n%s", c.args, leak, &stdout)
				}
			}
		})
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("keys generate --help wrote %s (err %v)", keyFile, err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("commands asked for help made %d requests", n)
	}
}

// TestHelpListsFlags: a command's help lists the flags of its own FlagSet.
func TestHelpListsFlags(t *testing.T) {
	for path, flags := range map[string][]string{
		"keys generate": {"-alg", "-out"},
		"explain":       {"-admin", "-token", "-json"},
		"serve":         {"-config"},
		"healthcheck":   {"-url", "-timeout"},
		"token":         {"-issuer", "-client", "-secret", "-scope", "-audience"},
	} {
		var stdout, stderr bytes.Buffer
		run(append(strings.Fields(path), "--help"), &stdout, &stderr)
		for _, f := range flags {
			if !strings.Contains(stdout.String(), "\n  "+f+" ") && !strings.Contains(stdout.String(), "\n  "+f+"\n") {
				t.Errorf("%s --help does not list %s:\n%s", path, f, &stdout)
			}
		}
	}
}

// TestCommandsDispatch: every command in the help table is one run knows,
// and commands that take no arguments refuse one rather than act.
func TestCommandsDispatch(t *testing.T) {
	for _, c := range commands {
		if c.path == "help" {
			continue
		}
		var stdout, stderr bytes.Buffer
		code := run(append(strings.Fields(c.path), "--no-such-flag"), &stdout, &stderr)
		if strings.Contains(stderr.String(), "unknown command") {
			t.Errorf("%s: %s", c.path, &stderr)
		}
		if code != 2 || stdout.Len() != 0 {
			t.Errorf("%s --no-such-flag = %d, stdout %q; want 2 and nothing done", c.path, code, &stdout)
		}
	}
	// Commands that take no positional argument refuse one rather than
	// ignore it while they act.
	for _, args := range [][]string{
		{"clients", "new-secret", "extra"}, {"clients", "hash", "extra"}, {"version", "extra"},
		{"config", "schema", "extra"}, {"demo", "extra"}, {"healthcheck", "extra"}, {"completion", "bash", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || stdout.Len() != 0 {
			t.Errorf("%q = %d, stdout %q; want 2 and nothing done", args, code, &stdout)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"frobnicate", "-h"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "unknown command") {
		t.Errorf("frobnicate -h = %d, %s", code, &stderr)
	}
}
