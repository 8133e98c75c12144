package faulttest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// tmpfs mounts a tmpfs of size bytes at a new directory and unmounts it at
// the end of t; the test is skipped, saying why, where mounting is not
// allowed (not root, or a sandbox without CAP_SYS_ADMIN).
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		// The gateway (and its open state file) is shut down by an
		// earlier-registered cleanup running after this one; unmount
		// lazily so that it can finish.
		exec.Command("umount", "-l", dir).Run()
	})
	return dir
}

// fill writes a file on dir's file system until it is full and returns
// its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}

// TestStateFileDiskFull: with the file store on a file system that fills
// up, a rate_limit whose bucket must be written fails the request closed
// with 500 internal_error (a disk error is not "unreachable", so
// on_store_error does not apply); nothing passes unlimited. Once there is
// room again, the same gateway limits and admits again, without a
// restart.
func TestStateFileDiskFull(t *testing.T) {
	dir := tmpfs(t, 256<<10)
	up := httptest.NewServer(&recorder{})
	defer up.Close()
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
store: {type: file, path: "${DIR}/state.db"}
routes:
  - name: limited
    match: {path: /limited}
    upstream: {url: "${UP}"}
    policies:
      - rate_limit: {key: "header:X-Client", rate: 1000, per: 1h, on_store_error: open}
`, map[string]string{"UP": up.URL, "DIR": dir}, options{})

	client := 0
	next := func() result {
		client++
		return get(t, g.base+"/limited", "X-Client", fmt.Sprintf("client-%06d-%s", client, padding))
	}
	next().want(t, "before the disk fills", 200, "")

	filler := fill(t, dir)
	// Existing pages can be rewritten in place; new keys make the file
	// grow until it cannot. Every answer is a 200 (written before the
	// disk was full) or the fail-closed 500: never a pass without a
	// decision.
	failed := 0
	var last result
	for range 3000 {
		last = next()
		switch last.status {
		case 200:
			continue
		case 500:
			if last.code != "internal_error" {
				t.Fatalf("disk full: got %d %q, want 500 internal_error", last.status, last.code)
			}
			failed++
		default:
			t.Fatalf("disk full: got %d %s", last.status, last.body)
		}
		if failed == 3 {
			break
		}
	}
	if failed == 0 {
		t.Skipf("3000 new keys fit in the full file system's pages; nothing to observe")
	}
	t.Logf("disk full: %d keys, %d refused with 500", client, failed)
	if !contains(g.access.String(), "no space left on device") {
		t.Error("the access log does not give the cause (no space left on device)")
	}

	// Room again: the next request is decided and admitted.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	next().want(t, "after space was freed", 200, "")
	// And the limiter still limits: a key with rate 1000 admits, an
	// over-cost key would be refused; check the bucket persisted by
	// repeating one key.
	for range 5 {
		get(t, g.base+"/limited", "X-Client", "repeat").want(t, "repeated key after recovery", 200, "")
	}
}

// padding makes each bucket key long, so that the state file must grow
// after a few hundred keys.
var padding = fmt.Sprintf("%0200d", 0)

// TestStateFileReadOnly: a state file on a read-only file system fails
// the start (gateway.New) with an error naming the store's path field, not
// the first request. (As root, chmod does not stop writes, so the file
// system itself is mounted read-only.)
func TestStateFileReadOnly(t *testing.T) {
	dir := tmpfs(t, 64<<10)
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount %s read-only (%v: %s)", dir, err, out)
	}
	cfg, err := config.LoadBytes("faulttest.yaml", []byte(`
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
store: {type: file, path: "`+dir+`/state.db"}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "http://127.0.0.1:1"}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		g.Close()
		t.Fatal("the gateway started on a read-only state file")
	}
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Path, "store") || ce.Line == 0 {
		t.Errorf("got %v, want a config error at store (with its line)", err)
	}
	if !errors.Is(err, syscall.EROFS) && !strings.Contains(err.Error(), "read-only") {
		t.Errorf("the error does not say why: %v", err)
	}
}
