package faulttest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary builds cmd/gatehouse once per test binary.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-faulttest-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gatehouse/gatehouse/cmd/gatehouse").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// proc is a running `gatehouse serve` with its stderr captured.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func serve(t *testing.T, cfgFile string) *proc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, "serve", "--config", cfgFile), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// body fetches url and returns "STATUS BODY" or the error.
func body(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, b), nil
}

// load runs n clients against url until stop is closed, counting answers
// by their "STATUS BODY" and errors by text.
type load struct {
	mu      sync.Mutex
	answers map[string]int
	errs    map[string]int
	wg      sync.WaitGroup
	stop    chan struct{}
}

func startLoad(n int, url string, c *http.Client) *load {
	l := &load{answers: map[string]int{}, errs: map[string]int{}, stop: make(chan struct{})}
	for range n {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				a, err := body(c, url)
				l.mu.Lock()
				if err != nil {
					l.errs[err.Error()]++
				} else {
					l.answers[a]++
				}
				l.mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // no busy loop on refusals
				}
			}
		})
	}
	return l
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// TestReloadBrokenConfigUnderLoad: while 8 clients loop, the config file
// is replaced by one that does not parse, then by one that parses but does
// not build (two routes on one path), then by a good one. No request
// fails; the old config serves until the good one, which then takes
// effect.
func TestReloadBrokenConfigUnderLoad(t *testing.T) {
	upA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	defer upA.Close()
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	defer upB.Close()
	addr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	config := func(up, extra string) string {
		return fmt.Sprintf(`
listeners: [{name: main, address: "%s"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "%s"}
%s`, addr, up, extra)
	}
	writeFile(t, cfgFile, config(upA.URL, ""))
	p := serve(t, cfgFile)
	c := &http.Client{Timeout: 5 * time.Second}
	eventually(t, 15*time.Second, "gateway up", func() string {
		if a, err := body(c, "http://"+addr+"/r"); err != nil || a != "200 A" {
			return fmt.Sprint(a, err)
		}
		return ""
	})

	l := startLoad(8, "http://"+addr+"/r", c)
	failures := func() int {
		p.stderr.mu.Lock()
		defer p.stderr.mu.Unlock()
		return strings.Count(p.stderr.b.String(), "config reload failed")
	}
	for i, broken := range []string{
		config(upB.URL, "    bogus: true\n"),
		config(upB.URL, "  - name: twin\n    match: {path: /r}\n    upstream: {url: \""+upB.URL+"\"}\n"),
	} {
		writeFile(t, cfgFile, broken)
		eventually(t, 5*time.Second, "failed reload logged", func() string {
			if failures() < i+1 {
				return "not yet"
			}
			return ""
		})
		time.Sleep(200 * time.Millisecond) // load on the old config
	}
	writeFile(t, cfgFile, config(upB.URL, ""))
	eventually(t, 5*time.Second, "the good config takes effect", func() string {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.answers["200 B"] == 0 {
			return "no B yet"
		}
		return ""
	})
	time.Sleep(200 * time.Millisecond)
	l.end()
	if len(l.errs) > 0 || len(l.answers) != 2 || l.answers["200 A"] == 0 {
		t.Errorf("answers %v, errors %v; want only 200 A then 200 B", l.answers, l.errs)
	}
	if a, _ := body(c, "http://"+addr+"/r"); a != "200 B" {
		t.Errorf("after the reloads: %q, want 200 B", a)
	}
	t.Logf("answers %v", l.answers)
}

// TestSIGTERMUnderLoad: SIGTERM while 16 clients loop against a slowish
// upstream, plus one long request in flight. Every request the gateway
// accepted completes with 200; the only errors are connections refused
// once the listener has closed; the process exits 0 within
// shutdown_timeout.
func TestSIGTERMUnderLoad(t *testing.T) {
	var inflight atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		d := 100 * time.Millisecond
		if r.URL.Path == "/long" {
			d = 1500 * time.Millisecond
		}
		time.Sleep(d)
		io.WriteString(w, "done")
	}))
	defer up.Close()
	addr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`
listeners: [{name: main, address: "%s"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
shutdown_timeout: 5s
routes:
  - name: r
    match: {path_prefix: /}
    upstream: {url: "%s"}
`, addr, up.URL))
	p := serve(t, cfgFile)
	c := &http.Client{Timeout: 10 * time.Second}
	eventually(t, 15*time.Second, "gateway up", func() string {
		if a, err := body(c, "http://"+addr+"/r"); err != nil || a != "200 done" {
			return fmt.Sprint(a, err)
		}
		return ""
	})
	l := startLoad(16, "http://"+addr+"/r", c)
	long := make(chan string, 1)
	go func() {
		a, err := body(c, "http://"+addr+"/long")
		long <- fmt.Sprint(a, err)
	}()
	time.Sleep(500 * time.Millisecond)
	if inflight.Load() == 0 {
		t.Fatal("nothing in flight at the upstream when SIGTERM is sent")
	}
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-p.done:
		p.done <- exitErr
	case <-time.After(60 * time.Second):
		t.Fatal("no exit within 60 s of SIGTERM (shutdown_timeout 5s)")
	}
	exited := time.Since(sent)
	l.end()
	if exitErr != nil {
		t.Errorf("exit: %v\n%s", exitErr, p.stderr.String())
	}
	if got := <-long; got != "200 done<nil>" {
		t.Errorf("the long request in flight at SIGTERM: %s", got)
	}
	if exited < time.Second {
		t.Errorf("exited %v after SIGTERM, before the 1.5s request in flight could finish", exited)
	}
	for e, n := range l.errs {
		if !strings.Contains(e, "connection refused") {
			t.Errorf("%d requests failed with %q; only new connections may be refused", n, e)
		}
	}
	for a, n := range l.answers {
		if a != "200 done" {
			t.Errorf("%d answers %q", n, a)
		}
	}
	t.Logf("answers %v, refused %v, exit after %v", l.answers, l.errs, exited)
}
