// Package npmtest installs the npm packages a test drives as peers (clients
// and signers written by others) into a testdata directory that holds their
// package.json and package-lock.json.
package npmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// Install runs `npm ci` in dir unless node_modules there already holds the
// pinned versions (package name to version), checks the result, and
// returns the path of node. Only when node or npm are missing or the
// registry cannot be reached is the peer unavailable (peertest.Unavailable:
// a loud skip, a failure under CI=true); any other failure fails the test.
func Install(t testing.TB, dir string, pinned map[string]string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		peertest.Unavailable(t, "node is not installed (apt-get install nodejs npm)")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		peertest.Unavailable(t, "npm is not installed (apt-get install npm)")
	}
	if installed(dir, pinned) {
		return node
	}
	// Test packages run as parallel processes, and several drive the
	// same peer: two `npm ci` in one directory delete each other's
	// node_modules (a test then fails with MODULE_NOT_FOUND). The
	// directory's lock makes them take turns; the one that waited finds
	// the packages installed.
	unlock, err := peertest.Lock(dir)
	if err != nil {
		t.Fatalf("npm peer directory: %v", err)
	}
	defer unlock()
	if installed(dir, pinned) {
		return node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		for _, e := range []string{"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED"} {
			if bytes.Contains(out, []byte(e)) {
				peertest.Unavailable(t, "npm ci could not reach the registry:\n%s", out)
			}
		}
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	for name, v := range pinned {
		if got := Version(dir, name); got != v {
			t.Fatalf("after npm ci, %s is %q, want %q", name, got, v)
		}
	}
	return node
}

func installed(dir string, pinned map[string]string) bool {
	for name, v := range pinned {
		if Version(dir, name) != v {
			return false
		}
	}
	return true
}

// Version returns the installed version of package name in dir's
// node_modules, or "" when it is not installed.
func Version(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	return pkg.Version
}
