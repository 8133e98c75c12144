package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// TestVersionLdflags builds the binary as the release does, with -X
// ldflags, and with the VCS stamp on, and reads `gatehouse version`.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	ld := "-X main.version=v9.8.7-test -X main.buildTime=2026-01-02T03:04:05Z"
	// Not -trimpath nor CGO_ENABLED=0 as the release: either would
	// rebuild every dependency instead of reusing the test's build cache;
	// scripts/release.sh is checked with them (deploy/release_test.go).
	cmd := exec.Command("go", "build", "-buildvcs=auto", "-ldflags", ld, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"gatehouse v9.8.7-test\n", "built:    2026-01-02T03:04:05Z\n", "go:       go1."} {
		if !strings.Contains(got, want) {
			t.Errorf("version output lacks %q:\n%s", want, got)
		}
	}
	// From a git checkout, the revision is the embedded vcs.revision. Go
	// finds the repository by a .git directory: a git worktree, whose .git
	// is a file, is built without the VCS stamp.
	top, _ := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	fi, statErr := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git"))
	if statErr == nil && !fi.IsDir() {
		t.Logf("a git worktree: Go does not stamp VCS information here; not checked")
	} else if rev, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if want := "revision: " + strings.TrimSpace(string(rev)); !strings.Contains(got, want) {
			t.Errorf("version output lacks %q:\n%s", want, got)
		}
		if !strings.Contains(got, "commit:   20") {
			t.Errorf("version output lacks the commit time:\n%s", got)
		}
	} else {
		t.Logf("not a git checkout (%v): the VCS stamp is not checked", err)
	}
}

// TestReadVersionOverrides: ldflags values win over the build info, and a
// "-dirty" revision is reported as modified.
func TestReadVersionOverrides(t *testing.T) {
	defer func(v, r, b string) { version, revision, buildTime = v, r, b }(version, revision, buildTime)
	version, revision, buildTime = "v1.2.3", "0123abcd-dirty", "2026-05-06T07:08:09Z"
	var b bytes.Buffer
	readVersion().print(&b)
	want := "gatehouse v1.2.3\nrevision: 0123abcd (modified)\nbuilt:    2026-05-06T07:08:09Z\n"
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("got\n%s\nwant prefix\n%s", &b, want)
	}
}

func TestHealthcheck(t *testing.T) {
	status := func(code int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" || r.Method != http.MethodGet {
				http.NotFound(w, r)
				return
			}
			if code == http.StatusFound {
				http.Redirect(w, r, "/elsewhere", code)
				return
			}
			w.WriteHeader(code)
		}))
		t.Cleanup(s.Close)
		return s.URL + "/healthz"
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/healthz"
	closed.Close()
	for _, tc := range []struct {
		name string
		args []string
		env  string
		code int
	}{
		{"healthy", []string{"--url", status(200)}, "", 0},
		{"unhealthy 503", []string{"--url", status(503)}, "", 1},
		{"redirect is unhealthy", []string{"--url", status(302)}, "", 1},
		{"connection refused", []string{"--url", closedURL}, "", 1},
		{"url from the environment", nil, status(200), 0},
		{"flag wins over the environment", []string{"--url", status(503)}, status(200), 1},
		{"extra argument", []string{"x"}, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GATEHOUSE_HEALTHCHECK_URL", tc.env)
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"healthcheck"}, tc.args...), &stdout, &stderr); code != tc.code {
				t.Errorf("healthcheck %v = %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, tc.code, &stdout, &stderr)
			}
		})
	}
}

// TestHealthcheckAgainstServe probes a real gateway's admin listener.
func TestHealthcheckAgainstServe(t *testing.T) {
	addr, admin := freeAddr(t), freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`
listeners: [{address: "%s"}]
admin: {address: "%s"}
access_log: {disabled: true}
store: {type: memory}
routes: [{name: r, match: {path: /r}, upstream: {url: "http://127.0.0.1:1"}}]
`, addr, admin))
	start(t, "serve", "--config", cfgFile)
	eventually(t, "healthcheck passes", func() string {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"healthcheck", "--url", "http://" + admin + "/healthz"}, &stdout, &stderr); code != 0 {
			return fmt.Sprintf("exit %d: %s", code, &stderr)
		}
		return ""
	})
}

// TestCompletion runs the bash script's completion function as bash
// would, and checks the zsh and fish scripts parse.
func TestCompletion(t *testing.T) {
	script := func(shell string) string {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"completion", shell}, &stdout, &stderr); code != 0 {
			t.Fatalf("completion %s = %d: %s", shell, code, &stderr)
		}
		f := filepath.Join(t.TempDir(), "gatehouse."+shell)
		writeFile(t, f, stdout.String())
		return f
	}
	bash := peertest.Debian(t, "bash", "bash")
	bashScript := script("bash")
	for _, tc := range []struct {
		words string
		cword int
		want  []string
		not   []string
	}{
		{"gatehouse ''", 1, []string{"serve", "check", "keys", "completion", "config", "healthcheck"}, nil},
		{"gatehouse k", 1, []string{"keys"}, []string{"serve"}},
		{"gatehouse keys ''", 2, []string{"generate", "jwks", "rotate", "refresh"}, []string{"serve"}},
		{"gatehouse keys generate --", 3, []string{"--alg", "--out", "--help"}, []string{"--config"}},
		{"gatehouse explain --", 2, []string{"--admin", "--token", "--json"}, nil},
		{"gatehouse completion ''", 2, []string{"bash", "zsh", "fish"}, nil},
		{"gatehouse config ''", 2, []string{"schema"}, nil},
	} {
		prog := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _gatehouse; echo "${COMPREPLY[*]}"`, bashScript, tc.words, tc.cword)
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.words, err, out)
		}
		got := " " + strings.TrimSpace(string(out)) + " "
		for _, w := range tc.want {
			if !strings.Contains(got, " "+w+" ") {
				t.Errorf("completing %s: %q lacks %q", tc.words, got, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(got, " "+w+" ") {
				t.Errorf("completing %s: %q has %q", tc.words, got, w)
			}
		}
	}
	zsh := peertest.Debian(t, "zsh", "zsh")
	if out, err := exec.Command(zsh, "-n", script("zsh")).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
	fish := peertest.Debian(t, "fish", "fish")
	fishScript := script("fish")
	if out, err := exec.Command(fish, "--no-execute", fishScript).CombinedOutput(); err != nil {
		t.Errorf("fish --no-execute: %v\n%s", err, out)
	}
	// Running it registers the completions fish then offers.
	out, err := exec.Command(fish, "-c", fmt.Sprintf("source %q; complete -C 'gatehouse keys '", fishScript)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "generate") || !strings.Contains(string(out), "rotate") {
		t.Errorf("fish completing 'gatehouse keys ': %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"completion", "tcsh"}, &stdout, &stderr); code != 2 {
		t.Errorf("completion tcsh = %d, want 2", code)
	}
}
