package gctune

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident is the process's resident set, in bytes.
func resident(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	var size, rss int64
	if _, err := fmt.Sscan(string(b), &size, &rss); err != nil {
		t.Fatal(err)
	}
	return rss * int64(os.Getpagesize())
}

// residentPages counts the resident pages of [addr, addr+size) (mincore).
func residentPages(t *testing.T, addr uintptr, size int) int {
	t.Helper()
	vec := make([]byte, size/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, addr, uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// vmFlags returns the VmFlags of the mapping holding addr in
// /proc/self/smaps.
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 5 && !strings.HasSuffix(f[0], ":") {
			// A mapping's header: "lo-hi perms offset dev inode [name]".
			var lo, hi uintptr
			if _, err := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); err == nil {
				in = lo <= addr && addr < hi
			}
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return nil
}

// populateSupported reports whether the kernel takes MADV_POPULATE_WRITE.
func populateSupported() error {
	b := make([]byte, os.Getpagesize())
	return unix.Madvise(b, unix.MADV_POPULATE_WRITE)
}

// TestPrefault: the range is resident, advised huge until done, and the
// heap's next allocations are carved from it instead of fresh pages.
func TestPrefault(t *testing.T) {
	const MiB = 1 << 20
	if err := populateSupported(); err != nil {
		t.Skipf("MADV_POPULATE_WRITE: %v (Linux 5.14 or later)", err)
	}
	addr, size, done := prefaultRange(64 * MiB)
	if size != 64*MiB || addr%hugePage != 0 {
		t.Fatalf("range %#x+%d, want 64 MiB aligned to 2 MiB", addr, size)
	}
	// The runtime's background scavenger may already be giving some of
	// the free range back, so three quarters, not all.
	if in, all := residentPages(t, addr, size), size/os.Getpagesize(); in < all*3/4 {
		t.Errorf("%d of the range's %d pages resident, want nearly all", in, all)
	}
	// Free in the heap and resident, ready for the next allocations.
	free := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(free)
	if got := free[0].Value.Uint64(); got < 32*MiB {
		t.Errorf("heap free and resident: %d MiB, want about 64", got/MiB)
	}
	_, thpErr := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled")
	thp := thpErr == nil // a kernel without THP refuses the advice
	if f := vmFlags(t, addr); thp && !slices.Contains(f, "hg") {
		t.Errorf("range not advised huge: VmFlags %v", f)
	}
	// Allocate 40 MiB of small objects, as a load does: it must not fault
	// in anything like as much again.
	at := resident(t)
	keep := make([][]byte, 0, 40*1024)
	for range 40 * 1024 {
		keep = append(keep, make([]byte, 1024))
	}
	// (The race detector's shadow memory grows with every allocation.)
	if more := resident(t) - at; more > 24*MiB && !raceEnabled {
		t.Errorf("40 MiB of allocation grew the resident set by %d MiB more: the range was not reused", more/MiB)
	}
	runtime.KeepAlive(keep)
	done()
	if f := vmFlags(t, addr); thp && (slices.Contains(f, "hg") || !slices.Contains(f, "nh")) {
		t.Errorf("done left the advice: VmFlags %v", f)
	}
}

// TestPrefaultNothing: below MinPrefault, with GATEHOUSE_PREFAULT=off,
// past a quarter of the memory available and past half the memory
// limit, nothing (or less) is touched.
func TestPrefaultNothing(t *testing.T) {
	const MiB = 1 << 20
	if _, size, done := prefaultRange(MinPrefault - 1); size != 0 {
		done()
		t.Errorf("below MinPrefault: touched %d bytes", size)
	}
	t.Setenv("GATEHOUSE_PREFAULT", "off")
	runtime.GC()
	before := resident(t)
	Prefault(64 * MiB)()
	if grown := resident(t) - before; grown > 16*MiB {
		t.Errorf("GATEHOUSE_PREFAULT=off: resident set grew by %d MiB", grown/MiB)
	}
	defer func(r func(string) ([]byte, error)) { readFile = r }(readFile)
	readFile = func(name string) ([]byte, error) {
		if name == "/proc/meminfo" {
			return []byte("MemAvailable:   81920 kB\n"), nil
		}
		return nil, os.ErrNotExist
	}
	if _, size, done := prefaultRange(256 * MiB); size > 20*MiB {
		done()
		t.Errorf("with 80 MiB available: touched %d MiB, want at most 20", size/MiB)
	}
	readFile = os.ReadFile
	old := debug.SetMemoryLimit(80 * MiB)
	defer debug.SetMemoryLimit(old)
	_, size, done := prefaultRange(256 * MiB)
	done()
	if size > 40*MiB {
		t.Errorf("with an 80 MiB memory limit: touched %d MiB, want at most 40", size/MiB)
	}
}
