package waf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmRSS returns the process's resident set size in bytes.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// The resident memory of a process with one WAF loaded and used (issue
// 10 aims at less than 100 MB for the whole gateway), measured in a child
// process that loads nothing else:
//
//	go test -count=1 -run TestResidentMemory -v ./internal/policy/waf/
func TestResidentMemory(t *testing.T) {
	if os.Getenv("WAF_RSS_CHILD") == "1" {
		runtime.GC()
		before := vmRSS(t)
		w := oursWAF(t, "")
		for range 50 {
			blocked(t, w, postRequest())
			blocked(t, w, sqli())
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("RSS %d %d %d\n", before, vmRSS(t), ms.HeapInuse)
		return
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory would be counted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestResidentMemory$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WAF_RSS_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var before, after, heap int64
	i := strings.Index(string(out), "RSS ")
	if i < 0 {
		t.Fatalf("child printed no RSS: %s", out)
	}
	if _, err := fmt.Sscanf(string(out[i:]), "RSS %d %d %d", &before, &after, &heap); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	t.Logf("VmRSS: %.1f MiB before building the WAF, %.1f MiB with it loaded and used (heap in use %.1f MiB)",
		float64(before)/(1<<20), float64(after)/(1<<20), float64(heap)/(1<<20))
	if after > 100<<20 {
		t.Errorf("VmRSS %d MiB with one WAF, want under 100 MiB", after>>20)
	}
}
