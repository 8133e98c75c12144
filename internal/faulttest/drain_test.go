package faulttest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainDeadline: a request still in flight when
// shutdown_timeout passes is cut, "drain deadline passed" is logged and
// the process exits 1, as docs/operations.md says (exit 0 is kept for a
// drain in which every request finished, TestSIGTERMUnderLoad).
func TestSIGTERMDrainDeadline(t *testing.T) {
	release := make(chan struct{})
	var inflight atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hang" {
			return
		}
		inflight.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(release) // before up.Close: let its handler end
	addr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`
listeners: [{name: main, address: "%s"}]
admin: {address: "off"}
access_log: {disabled: true}
store: {type: memory}
shutdown_timeout: 300ms
routes:
  - name: r
    match: {path_prefix: /}
    upstream: {url: "%s"}
`, addr, up.URL))
	p := serve(t, cfgFile)
	c := &http.Client{Timeout: 30 * time.Second}
	probe := &http.Client{Timeout: time.Second}
	eventually(t, 15*time.Second, "gateway up", func() string {
		resp, err := probe.Head("http://" + addr + "/ready-probe")
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return ""
	})
	hung := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + addr + "/hang")
		if err == nil {
			resp.Body.Close()
		}
		hung <- err
	}()
	eventually(t, 15*time.Second, "the request in flight at the upstream", func() string {
		if inflight.Load() == 0 {
			return "not yet"
		}
		return ""
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-p.done:
		p.done <- exitErr
	case <-time.After(60 * time.Second):
		t.Fatal("no exit within 60 s of SIGTERM (shutdown_timeout 300ms)")
	}
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want exit status 1 after the drain deadline\n%s", exitErr, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "drain deadline passed") {
		t.Errorf("no \"drain deadline passed\" in the log:\n%s", p.stderr.String())
	}
	select {
	case err := <-hung:
		if err == nil {
			t.Errorf("the request in flight at the deadline completed; want it cut")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the request in flight was not cut when the process exited")
	}
}
