package waf

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
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
// 10 aims at less than 100 MB for the whole gateway). Meaningful run
// alone:
//
//	go test -count=1 -run TestResidentMemory -v ./internal/policy/waf/
func TestResidentMemory(t *testing.T) {
	runtime.GC()
	before := vmRSS(t)
	w := oursWAF(t, "")
	for range 50 {
		blocked(t, w, postRequest())
		blocked(t, w, sqli())
	}
	runtime.GC()
	after := vmRSS(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("VmRSS: %.1f MiB before building the WAF, %.1f MiB with it loaded and used (heap in use %.1f MiB)",
		float64(before)/(1<<20), float64(after)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	if after > 100<<20 {
		t.Errorf("VmRSS %d MiB with one WAF, want under 100 MiB", after>>20)
	}
}
