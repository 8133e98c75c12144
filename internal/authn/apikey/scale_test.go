package apikey

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// TestScaleKeys measures loading a keys_file of GATEHOUSE_SCALE_KEYS keys
// (for example 1000000) with the previous whole-document loader and with
// the streaming one, side by side, each in its own process so that the
// resident sizes are its own: load time, heap after load, peak RSS, a
// reload while the first set is live, and the lookup cost (mean and the
// slowest 1 in 10,000). Skipped unless the variable is set; bench/scale.sh
// runs it.
//
//	GATEHOUSE_SCALE_KEYS=1000000 go test -run TestScaleKeys -v ./internal/authn/apikey/
func TestScaleKeys(t *testing.T) {
	if mode := os.Getenv("GATEHOUSE_SCALE_KEYS_MODE"); mode != "" {
		scaleChild(t, mode, os.Getenv("GATEHOUSE_SCALE_KEYS_FILE"))
		return
	}
	n, _ := strconv.Atoi(os.Getenv("GATEHOUSE_SCALE_KEYS"))
	if n <= 0 {
		t.Skip("set GATEHOUSE_SCALE_KEYS to a number of keys to measure")
	}
	path := filepath.Join(t.TempDir(), "keys.yaml")
	writeScaleKeys(t, path, n)
	fi, _ := os.Stat(path)
	t.Logf("%d keys, keys file %.1f MiB", n, float64(fi.Size())/(1<<20))
	modes := []string{"before", "after"}
	if os.Getenv("GATEHOUSE_SCALE_KEYS_AFTER_ONLY") != "" {
		modes = modes[1:]
	}
	for _, mode := range modes {
		cmd := exec.Command(os.Args[0], "-test.run=^TestScaleKeys$", "-test.v")
		cmd.Env = append(os.Environ(), "GATEHOUSE_SCALE_KEYS_MODE="+mode, "GATEHOUSE_SCALE_KEYS_FILE="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if _, res, ok := strings.Cut(l, "RESULT "); ok {
				t.Logf("%-6s %s", mode, res)
			}
		}
	}
}

// scaleKey is the i-th key of the generated file.
func scaleKey(i int) string { return fmt.Sprintf("gh_scale-test-key-%09d", i) }

func writeScaleKeys(t *testing.T, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "# %d generated consumers\nkeys:\n", n)
	tiers := []string{"gold", "silver", "bronze"}
	for i := range n {
		fmt.Fprintf(w, "  - consumer: app-%d\n    hash: \"%s\"\n    scopes: [products:read, orders:%s]\n    tier: %s\n",
			i, HashKey(scaleKey(i)), tiers[i%3], tiers[i%3])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// lookupFunc authenticates key, returning its consumer.
type lookupFunc func(key string) (string, bool)

func scaleChild(t *testing.T, mode, path string) {
	cfg, err := config.ParseNode(filepath.Join(filepath.Dir(path), "gatehouse.yaml"), []byte("keys_file: keys.yaml\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	load := func() lookupFunc {
		if mode == "before" {
			return legacyLoad(t, path)
		}
		a, err := New(cfg, &authn.Env{Env: policytest.Env(), Realm: "api"})
		if err != nil {
			t.Fatal(err)
		}
		// What Authenticate does once it has the key.
		return func(key string) (string, bool) {
			var buf [maxKeyLen]byte
			sum := sha256.Sum256(buf[:copy(buf[:], key)])
			i := a.p.keys.lookup(&sum)
			if i < 0 {
				return "", false
			}
			return a.p.keys.principal(i).Consumer, true
		}
	}
	start, cpu0 := time.Now(), cpuTime()
	look := load()
	loadTime, loadCPU := time.Since(start), cpuTime()-cpu0
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := ms.HeapAlloc
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")

	// Lookups of existing keys, in batches of 100 timed together so that
	// a GC pause shows as a slow batch.
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = scaleKey((i * 7919) % countKeys(path))
	}
	var batches []time.Duration
	for round := 0; round < 5; round++ {
		for b := 0; b < len(keys); b += 100 {
			s := time.Now()
			for _, k := range keys[b : b+100] {
				if _, ok := look(k); !ok {
					t.Fatalf("key %s not found", k)
				}
			}
			batches = append(batches, time.Since(s)/100)
		}
	}
	slices.Sort(batches)
	var sum time.Duration
	for _, d := range batches {
		sum += d
	}

	// A reload: a second set built while the first is live.
	start, cpu0 = time.Now(), cpuTime()
	look2 := load()
	reloadTime, reloadCPU := time.Since(start), cpuTime()-cpu0
	reloadHWM := procStatus("VmHWM")
	runtime.KeepAlive(look)
	runtime.KeepAlive(look2)
	fmt.Printf("RESULT load %.2fs (CPU %.2fs), heap after GC %.0f MiB, RSS %.0f MiB, peak RSS %.0f MiB; "+
		"lookup mean %v, p99.99 of 100-lookup batches %v; reload %.2fs (CPU %.2fs), peak RSS %.0f MiB\n",
		loadTime.Seconds(), loadCPU.Seconds(), float64(heap)/(1<<20), rss, hwm,
		(sum / time.Duration(len(batches))).Round(10*time.Nanosecond),
		batches[len(batches)*9999/10000].Round(10*time.Nanosecond),
		reloadTime.Seconds(), reloadCPU.Seconds(), reloadHWM)
}

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

func countKeys(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	n, _ := strconv.Atoi(strings.Fields(sc.Text() + " x 0")[1])
	return max(n, 1)
}

// procStatus returns a /proc/self/status size in MiB.
func procStatus(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// legacyLoad is the loader this package had before the streaming reader,
// kept here only as the "before" of TestScaleKeys: the whole file parsed
// into YAML nodes, decoded, and kept in a map of per-consumer Principals.
func legacyLoad(t *testing.T, path string) lookupFunc {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := config.ParseNode(path, data, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	var f keysFile
	if err := n.Decode(&f); err != nil {
		t.Fatal(err)
	}
	type consumer struct {
		hash      [sha256.Size]byte
		principal *policy.Principal
	}
	byHash := make(map[[sha256.Size]byte]*consumer)
	for _, k := range f.Keys {
		sum, err := ParseHash(k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		claims := map[string]any{"tier": k.Tier}
		byHash[sum] = &consumer{hash: sum, principal: &policy.Principal{Subject: k.Consumer, ClientID: k.Consumer,
			Consumer: k.Consumer, Scopes: k.Scopes, Claims: claims, Method: "apikey"}}
	}
	return func(key string) (string, bool) {
		var buf [maxKeyLen]byte
		sum := sha256.Sum256(buf[:copy(buf[:], key)])
		c, ok := byHash[sum]
		if !ok {
			return "", false
		}
		pr := *c.principal
		return (&pr).Consumer, true
	}
}
