package gateway

import (
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestScaleRoutes measures a config of GATEHOUSE_SCALE_ROUTES routes (for
// example 10000), each with three policies: the time to load and build
// it, and the heap the gateway holds for it at rest, in total and per
// route. It uses only what every version of the package has, so that
// bench/scale.sh can run it on an older checkout for the "before".
// Skipped unless the variable is set.
//
//	GATEHOUSE_SCALE_ROUTES=10000 go test -run TestScaleRoutes -v ./internal/gateway/
//
// cpuTime is the CPU time (user and system, every thread) the process has
// used: on a shared machine it says more about a load's cost than the wall
// clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestScaleRoutes(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GATEHOUSE_SCALE_ROUTES"))
	if n <= 0 {
		t.Skip("set GATEHOUSE_SCALE_ROUTES to a number of routes to measure")
	}
	if os.Getenv("GATEHOUSE_SCALE_HEAPPROFILE") != "" {
		goruntime.MemProfileRate = 512
	}
	var b strings.Builder
	b.WriteString("listeners: [{name: main, address: \"127.0.0.1:0\"}]\nadmin: {address: \"off\"}\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - name: route-%d
    match: {path_prefix: /r%d/, methods: [GET, POST]}
    upstream: {url: "http://127.0.0.1:1"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8, 10.0.0.0/8]}
      - size_limit: {body: 1MiB, headers: 16KiB}
      - headers: {request: {set: {X-Route: "r%d"}}}
`, i, i, i)
	}
	data := []byte(b.String())
	b = strings.Builder{}
	heap := func() uint64 {
		goruntime.GC()
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	start, cpu0 := time.Now(), cpuTime()
	cfg, err := config.LoadBytes("scale.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(start)
	g, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	built, builtCPU := time.Since(start), cpuTime()-cpu0
	cfg = nil
	data = nil
	after := heap()
	if f := os.Getenv("GATEHOUSE_SCALE_HEAPPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(out); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	goruntime.KeepAlive(g)
	held := float64(after) - float64(before)
	t.Logf("RESULT %d routes: load+build %.2fs (parse %.2fs; CPU %.2fs), held at rest %.1f MiB, %.2f KiB per route",
		n, built.Seconds(), loaded.Seconds(), builtCPU.Seconds(), held/(1<<20), held/float64(n)/1024)
	g.Close()
	g = nil
	if os.Getenv("GATEHOUSE_SCALE_DEBUG") != "" {
		t.Logf("after close: %.1f MiB above the start", (float64(heap())-float64(before))/(1<<20))
	}
}
