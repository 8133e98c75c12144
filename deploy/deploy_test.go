// Package deploy holds the tests of the packaging files: the systemd unit
// (systemd-analyze), the release script (one target, its checksums and
// SBOM) and the Dockerfile's shape. The Helm chart has its own package,
// deploy/helm, so that its large modules build only for that test.
package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// TestSystemdUnit checks the unit with systemd-analyze: verify prints
// nothing (an unknown key or a bad value is only a warning there, so any
// output fails the test), and the offline security review rates it
// well protected.
func TestSystemdUnit(t *testing.T) {
	sa := peertest.Debian(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("systemd/gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"DynamicUser=yes", "StateDirectory=gatehouse", "ProtectSystem=strict", "ProtectHome=yes",
		"NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "SystemCallFilter=@system-service",
		"ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	// verify checks that ExecStart's program is executable: stand in for
	// the installed binary with one that is.
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/gatehouse", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "gatehouse.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for gatehouse.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.5 {
		t.Errorf("exposure level %.1f, want at most 2.5 (OK):\n%s", level, out)
	}
	// The check must not be vacuous: a bad key is reported.
	bad := filepath.Join(dir, "bad.service")
	os.WriteFile(bad, []byte("[Service]\nExecStart="+self+"\nProtectSystem=sideways\n"), 0o644)
	if out, _ := exec.Command(sa, "verify", "--man=no", bad).CombinedOutput(); !strings.Contains(string(out), "bad.service") {
		t.Errorf("systemd-analyze verify did not report a bad value: %s", out)
	}
}

func TestReleaseScriptHelp(t *testing.T) {
	out, err := exec.Command("sh", "../scripts/release.sh", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: scripts/release.sh") {
		t.Errorf("release.sh --help: %v\n%s", err, out)
	}
	out, err = exec.Command("sh", "../scripts/release.sh", "--bogus").CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Errorf("release.sh --bogus: exit %d, want 2\n%s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestReleaseOneTarget runs the release script for linux/amd64 only (all
// four targets take too long for the test suite): the binary is static and
// stamped, SHA256SUMS matches it, and the SBOM lists the modules linked.
func TestReleaseOneTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary and the SBOM")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "../scripts/release.sh", "--version", "v0.0.0-test", "--out", out,
		"--targets", "linux/amd64", "--allow-dirty")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	bin := filepath.Join(out, "gatehouse-v0.0.0-test-linux-amd64")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the release binary has an ELF interpreter: it is not static")
		}
	}
	f.Close()
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		v, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(v), "gatehouse v0.0.0-test\n") || !strings.Contains(string(v), "built:") {
			t.Errorf("version: %v\n%s", err, v)
		}
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sums), "gatehouse-v0.0.0-test-linux-amd64\n") || !strings.Contains(string(sums), "gatehouse-v0.0.0-test-linux-amd64.cdx.json\n") {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, b)
	}
	sbom, err := os.ReadFile(bin + ".cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name, Version string }
		}
		Components []struct {
			Name, Version, Purl string
		}
	}
	if err := json.Unmarshal(sbom, &doc); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, c := range doc.Components {
		names[c.Name] = c.Version
	}
	if doc.Metadata.Component.Name != "github.com/gatehouse/gatehouse" || doc.Metadata.Component.Version != "v0.0.0-test" {
		t.Errorf("SBOM main component = %+v", doc.Metadata.Component)
	}
	if doc.BOMFormat != "CycloneDX" || names["go.yaml.in/yaml/v3"] == "" || names["github.com/corazawaf/coraza/v3"] == "" {
		t.Errorf("SBOM: format %q, %d components, yaml %q, coraza %q", doc.BOMFormat, len(doc.Components),
			names["go.yaml.in/yaml/v3"], names["github.com/corazawaf/coraza/v3"])
	}
	// Test-only modules (helm's, for the chart test) are not linked into
	// the binary and must not be listed.
	if _, ok := names["helm.sh/helm/v4"]; ok {
		t.Error("SBOM lists helm.sh/helm/v4, which the binary does not link")
	}
}

// TestDockerfile checks the image recipe's shape; building it needs a
// registry for its base images, which tests cannot reach.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var froms []string
	var final []string // instructions of the last stage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			froms = append(froms, line)
			final = nil
		}
		final = append(final, line)
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "FROM golang:${GO_VERSION} AS build") ||
		froms[1] != "FROM gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("stages: %q", froms)
	}
	joined := strings.Join(final, "\n")
	for _, want := range []string{
		"USER 65532:65532",
		`HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \`,
		`CMD ["/gatehouse", "healthcheck"]`,
		`ENTRYPOINT ["/gatehouse"]`,
		`VOLUME ["/var/lib/gatehouse"]`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("the final stage lacks %s", want)
		}
	}
	data, _ := os.ReadFile("../Dockerfile")
	if !strings.Contains(string(data), "CGO_ENABLED=0 go build -trimpath") {
		t.Error("the binary is not built static")
	}
}
