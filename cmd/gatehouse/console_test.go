package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// ensurePlaywright installs playwright-core (the version package.json
// pins) into testdata/console/node_modules when missing.
func ensurePlaywright(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install playwright-core: %v\n%s", err, out)
	}
}

// TestConsoleInBrowser runs `gatehouse demo`, puts it under a small load
// (a few hundred requests, a third of them denied for three reasons),
// opens the console in headless chromium and checks that the charts
// update, the denial list fills and a denial's explanation shows the
// policy chain. The screenshot goes to $TEST_ARTIFACTS or a temporary
// directory.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium := peertest.Debian(t, "chromium", "chromium")
	node, err := exec.LookPath("node")
	if err != nil {
		peertest.Unavailable(t, "the console browser test needs node, which is not installed")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "console"))
	if err != nil {
		t.Fatal(err)
	}
	ensurePlaywright(t, dir)
	artifacts := os.Getenv("TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "console.png")

	addr, adminAddr := freeAddr(t), freeAddr(t)
	p := start(t, "demo", "--listen", addr, "--admin-listen", adminAddr)
	base := "http://" + addr
	tokens := map[string]string{}
	eventually(t, "demo prints its tokens", func() string {
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "export ") {
				tokens[strings.TrimPrefix(k, "export ")] = v
			}
		}
		if tokens["READER"] == "" || tokens["SALES"] == "" {
			return "no READER and SALES tokens in\n" + p.stdout.String()
		}
		return ""
	})
	eventually(t, "demo up", func() string {
		code, _, err := do("GET", base+"/product/p-1001", tokens["READER"], "")
		if err != nil || code != 200 {
			return fmt.Sprintf("%d %v", code, err)
		}
		return ""
	})

	// The load: a request every 20 ms or so until the browser is done
	// (bounded at 30,000, far more than a loaded machine needs), so that the
	// charts have traffic however slowly the page loads.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, denied atomic.Int64
	lamp := `{"name":"Lamp","price":25.5,"currency":"EUR"}`
	wg.Go(func() {
		for i := 0; i < 30_000 && ctx.Err() == nil; i++ {
			var code int
			switch i % 6 {
			case 0:
				code, _, _ = do("GET", base+"/product", "", "") // 401 missing_credentials
			case 1:
				code, _, _ = do("POST", base+"/product", tokens["READER"], lamp) // 403 insufficient_scope
			case 2:
				code, _, _ = do("POST", base+"/product", tokens["SALES"], lamp) // 403 not_catalog
			default:
				code, _, _ = do("GET", base+"/product/p-1001", tokens["READER"], "")
			}
			sent.Add(1)
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				denied.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	// Let some traffic accumulate before the page opens: a condition, not
	// a sleep, so that a loaded machine only takes longer.
	eventually(t, "load under way", func() string {
		if n := sent.Load(); n < 60 {
			return fmt.Sprintf("%d requests sent", n)
		}
		return ""
	})

	runCtx, stop := context.WithTimeout(context.Background(), 10*time.Minute)
	defer stop()
	cmd := exec.CommandContext(runCtx, node, "console.mjs", "http://"+adminAddr+"/console", shot)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node console.mjs: %v\n%s", err, out)
	}
	var got struct {
		Errors                     []string
		FirstUpdates, LaterUpdates int
		First, Later               struct{ Totals string }
		Points                     int
		DenialChartUpdates         int
		DenialSeries               int
		DenialRows                 int
		DenialCodes                []string
		AuditRows                  int
		Routes                     []string
		ExplainedID                string
		ExplainText                string
		ExplainPolicies            [][]string
		Fatal                      string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("console.mjs output: %v\n%s", err, out)
	}
	t.Logf("screenshot: %s", shot)
	fmt.Printf("console screenshot saved to %s\n", shot)
	if got.Fatal != "" {
		t.Fatalf("in the browser: %s\n%s", got.Fatal, out)
	}
	if len(got.Errors) > 0 {
		t.Errorf("page errors: %v", got.Errors)
	}
	if got.LaterUpdates < got.FirstUpdates+2 || got.Points < 60 || got.DenialChartUpdates < 2 {
		t.Errorf("charts: %d then %d updates, %d points, denial chart %d updates", got.FirstUpdates, got.LaterUpdates, got.Points, got.DenialChartUpdates)
	}
	if got.First.Totals == got.Later.Totals {
		t.Errorf("the totals did not change under load: %q", got.Later.Totals)
	}
	// uPlot's legend has the x series plus one per denial code seen.
	if got.DenialSeries < 1+3 {
		t.Errorf("denial chart series: got %d, want the x series and 3 codes", got.DenialSeries)
	}
	codes := strings.Join(got.DenialCodes, " ")
	for _, c := range []string{"missing_credentials", "insufficient_scope", "not_catalog"} {
		if !strings.Contains(codes, c) {
			t.Errorf("denial list %q lacks %s", codes, c)
		}
	}
	if got.AuditRows == 0 {
		t.Error("no audit events listed")
	}
	if routes := strings.Join(got.Routes, ","); !strings.Contains(routes, "products-list") || !strings.Contains(routes, "product-by-id") {
		t.Errorf("routes: got %v, want the demo's", got.Routes)
	}
	// The explanation names the chain up to the denying policy.
	var chain []string
	for _, row := range got.ExplainPolicies {
		if len(row) >= 3 {
			chain = append(chain, row[1]+"="+row[2])
		}
	}
	if !strings.Contains(got.ExplainText, got.ExplainedID) || len(chain) < 2 || !strings.HasSuffix(chain[len(chain)-1], "=deny") {
		t.Errorf("explanation of %s: chain %v\n%s", got.ExplainedID, chain, got.ExplainText)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("load: %d sent, %d denied", sent.Load(), denied.Load())
}
