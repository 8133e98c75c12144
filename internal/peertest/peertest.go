// Package peertest finds the programs written by others that tests drive
// as peers (redis-server, xmlsec1, chromium, node and npm packages), and
// installs the Debian ones when they are missing.
//
// A peer that cannot be had skips its test, loudly, on a developer's
// machine; under CI=true it fails the test instead, so that CI never
// passes by not running a peer test.
package peertest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI set to a true value, as
// GitHub Actions, GitLab and our .ci/run environment set it).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Unavailable ends t because a peer it needs cannot be had: it skips t
// with "SKIPPING PEER TEST" and the reason, or, under CI=true, fails it.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("PEER UNAVAILABLE under CI=true (a peer test must not skip in CI): %s", msg)
	}
	t.Skipf("SKIPPING PEER TEST: %s", msg)
}

var (
	aptMu   sync.Mutex
	aptErrs = map[string]error{} // by package list: one attempt per test binary
)

// Debian returns the path of the program bin, installing the Debian
// packages pkgs with apt-get when it is missing (once per test binary,
// with `apt-get update` when the package lists are stale or absent). It
// calls Unavailable when bin still cannot be found.
func Debian(t testing.TB, bin string, pkgs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	if err := aptInstall(pkgs); err != nil {
		Unavailable(t, "%s is not installed and `apt-get install %s` failed: %v", bin, strings.Join(pkgs, " "), err)
		return ""
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		Unavailable(t, "%s not found after installing %s: %v", bin, strings.Join(pkgs, " "), err)
		return ""
	}
	return p
}

// DebianPackages installs pkgs when dpkg does not list them all as
// installed (for libraries, such as python3-zeep, that have no program of
// their own), calling Unavailable when that fails.
func DebianPackages(t testing.TB, pkgs ...string) {
	t.Helper()
	if installed(pkgs) {
		return
	}
	if err := aptInstall(pkgs); err != nil {
		Unavailable(t, "`apt-get install %s` failed: %v", strings.Join(pkgs, " "), err)
	}
}

func installed(pkgs []string) bool {
	for _, p := range pkgs {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "installed") {
			return false
		}
	}
	return true
}

func aptInstall(pkgs []string) error {
	key := strings.Join(pkgs, " ")
	aptMu.Lock()
	defer aptMu.Unlock()
	if err, done := aptErrs[key]; done {
		return err
	}
	err := runApt(pkgs)
	aptErrs[key] = err
	return err
}

func runApt(pkgs []string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return err
	}
	// Test packages run as parallel processes, and several install the
	// same peers: apt-get refuses to run while another holds dpkg's lock,
	// which on a fresh machine failed whichever came second. They take
	// turns on a lock of their own, and wait for dpkg's (another apt on
	// the machine) rather than fail.
	unlock, err := Lock(filepath.Join(os.TempDir(), "gatehouse-peertest-apt.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install := append([]string{"-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends"}, pkgs...)
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	if _, err := run(install...); err == nil {
		return nil
	}
	// The package lists may be missing or stale on a fresh machine.
	if out, err := run("-o", "DPkg::Lock::Timeout=300", "update"); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, tail(out))
	}
	if out, err := run(install...); err != nil {
		return fmt.Errorf("apt-get install: %v\n%s", err, tail(out))
	}
	return nil
}

// Lock takes an exclusive flock on path, a directory or a file (created
// when missing), waiting while another process holds it: how test
// processes that install the same peer take turns. unlock releases it.
func Lock(path string) (unlock func(), err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %v", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func tail(b []byte) []byte { return b[max(0, len(b)-2000):] }
