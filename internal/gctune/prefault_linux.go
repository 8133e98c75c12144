package gctune

import (
	"runtime"
	"runtime/debug"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on amd64 and arm64 with
// 4 KiB base pages; on other sizes the advice is merely less effective.
const hugePage = 2 << 20

// prefault is Prefault on Linux. See Prefault for the contract.
func prefault(n int) (done func()) {
	_, _, done = prefaultRange(n)
	return done
}

// prefaultRange is prefault that also tells where: the range's address and
// size, zero when nothing was touched.
func prefaultRange(n int) (addr uintptr, size int, done func()) {
	// The soft memory limit (GOMEMLIMIT, or Loading's) bounds what is
	// touched ahead: never more than half of it.
	if limit := debug.SetMemoryLimit(-1); limit > 0 && int64(n) > limit/2 {
		n = int(limit / 2)
	}
	// So does the memory the system or the process's cgroup has room
	// for: never more than a quarter of it. A config of long comments or
	// inline documents allocates far less than its size suggests, and
	// touching it ahead must not be what pushes a container to its limit.
	if room, ok := memoryRoom(readFile); ok && int64(n) > room/4 {
		n = int(room / 4)
	}
	n &^= hugePage - 1
	if n < MinPrefault {
		return 0, 0, func() {}
	}
	// One large object: the allocator gives it fresh pages of its own,
	// one hugePage more so that an aligned range of n fits in it.
	b := make([]byte, n+hugePage)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	off := int((base+hugePage-1)&^(hugePage-1) - base)
	r := b[off : off+n]
	addr = uintptr(unsafe.Pointer(unsafe.SliceData(r)))
	// Huge pages where the kernel allows them (its setting "madvise" or
	// "always"; with "never" the range is populated in base pages, which
	// still saves a fault's entry and exit for each).
	advised := unix.Madvise(r, unix.MADV_HUGEPAGE) == nil
	// Fault the range in with a system call a core (Linux 5.14 and
	// later; older kernels refuse the advice and nothing is touched):
	// the kernel zeroes each page, and one core would take as long as
	// the faults it saves take spread over every core.
	workers := max(1, min(runtime.GOMAXPROCS(0), n/hugePage))
	share := n / workers &^ (hugePage - 1)
	var wg sync.WaitGroup
	for w := range workers {
		part := r[w*share:]
		if w < workers-1 {
			part = part[:share]
		}
		wg.Go(func() { _ = unix.Madvise(part, unix.MADV_POPULATE_WRITE) })
	}
	wg.Wait()
	runtime.KeepAlive(b)
	// Collect the object now (nothing refers to it past this point), so
	// that its pages are free in the heap and the load's allocations are
	// carved from them.
	runtime.GC()
	return addr, n, func() {
		if advised {
			// Withdraw the advice, by address: the range is the
			// heap's now, not an object of ours. Pages already huge
			// stay so; khugepaged no longer assembles new ones here,
			// which would grow the resident set of a long-running
			// process over pages the heap has given back (the reason
			// the Go runtime itself stopped advising huge pages).
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, uintptr(n), unix.MADV_NOHUGEPAGE)
		}
	}
}
