// Package gctune keeps the Go garbage collector's heap goal from falling
// below a floor.
//
// With GOGC=100 the collector runs each time the heap has grown by as much
// as is live. A gateway's live heap is small (a few MiB for a plain proxy)
// and its garbage is fast (every request's buffers and headers), so it
// collects several times a second: each collection is a stop-the-world
// pause and a millisecond or two of marking that a request arriving then
// waits behind, which on a small machine is what sets the tail latency.
// Raising the goal to a floor while the live heap is small makes
// collections rare at a bounded memory cost; once the live heap is above
// half the floor, GOGC is the base again and memory grows as it would
// without the tuner.
//
// An operator who sets GOGC chooses for themselves: the tuner then does
// nothing. GOMEMLIMIT still caps the heap either way.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MaxPercent bounds the GOGC the tuner sets, so that a nearly empty heap
// does not make the goal a multiple of the floor.
const MaxPercent = 2000

// Percent returns the GOGC that puts the heap goal, live×(1+GOGC/100), at
// floor or above: base when base already does, never more than MaxPercent.
func Percent(live, floor uint64, base int) int {
	if live == 0 || base <= 0 {
		return base
	}
	if live*uint64(100+base)/100 >= floor {
		return base
	}
	// The smallest p with live*(100+p)/100 >= floor, rounded up.
	p := int((floor*100+live-1)/live) - 100
	return min(max(p, base), MaxPercent)
}

// Start tunes GOGC after every collection until stop is called, which puts
// the base back. It does nothing, and stop nothing, when GOGC is set in the
// environment.
//
// The tuning runs right after each collection (a finalizer of an object
// made for it, made anew each time): the goal the collector sets from a
// live heap that just grew (a config reload building a WAF) is corrected
// before the heap can grow toward it, where a timer would leave it for up
// to its period.
func Start(floor uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	t := &tuner{floor: floor, base: base, current: base}
	t.mu.Lock()
	t.arm()
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.stopped = true
			debug.SetGCPercent(base)
			t.mu.Unlock()
		})
	}
}

// Loading relaxes the collector while a process loads and builds its
// config, and returns the function that ends it. Parsing and building a
// large config (10,000 routes) allocates several times what it keeps,
// and at GOGC=100 the collector runs half a dozen times on the way up,
// each time marking a heap that is almost all still in use: about a
// fifth of the load's CPU. Until done is called GOGC is LoadPercent and
// the soft memory limit at most LoadLimit (GOMEMLIMIT when lower), so the
// peak stays bounded; a tuner (Start) leaves GOGC alone meanwhile. done
// puts both back. With GOGC in the environment Loading does nothing.
func Loading() (done func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	loadingMu.Lock()
	defer loadingMu.Unlock()
	loading++
	if loading > 1 {
		return onceDone()
	}
	savedPercent = debug.SetGCPercent(LoadPercent)
	savedLimit = debug.SetMemoryLimit(-1)
	debug.SetMemoryLimit(min(savedLimit, LoadLimit))
	return onceDone()
}

// The collector's settings while loading (Loading).
const (
	LoadPercent = 400
	LoadLimit   = 1 << 30
)

var (
	loadingMu    sync.Mutex
	loading      int // Loadings not yet done
	savedPercent int
	savedLimit   int64
)

func onceDone() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			loadingMu.Lock()
			defer loadingMu.Unlock()
			loading--
			if loading == 0 {
				debug.SetGCPercent(savedPercent)
				debug.SetMemoryLimit(savedLimit)
			}
		})
	}
}

// isLoading reports whether a Loading is under way.
func isLoading() bool {
	loadingMu.Lock()
	defer loadingMu.Unlock()
	return loading > 0
}

type tuner struct {
	floor         uint64
	base, current int
	mu            sync.Mutex
	stopped       bool
}

// sentinel is the object whose finalizer tunes: it becomes unreachable at
// once, so it is finalized after the next collection.
type sentinel struct{ t *tuner }

// arm makes the next sentinel. t.mu is held.
func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) { s.t.afterGC() })
}

var liveMetric = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

func (t *tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if isLoading() {
		// Loading owns GOGC until it is done; the next collection after
		// it tunes again.
		t.arm()
		return
	}
	metrics.Read(liveMetric)
	if liveMetric[0].Value.Kind() == metrics.KindUint64 {
		t.set(Percent(liveMetric[0].Value.Uint64(), t.floor, t.base))
	}
	t.arm()
}

// set applies p when it differs from the current setting by more than a
// tenth: the live heap moves a little at every collection, and each change
// of GOGC recomputes the collector's pacing. t.mu is held.
func (t *tuner) set(p int) {
	d := p - t.current
	if d < 0 {
		d = -d
	}
	if d*10 <= t.current && p != t.base {
		return
	}
	if p != t.current {
		debug.SetGCPercent(p)
		t.current = p
	}
}

// Prefaulting: the heap a large load will touch, faulted in ahead.
const (
	// LoadBytesPerByte estimates the heap a config load allocates for
	// each byte of its text: 160 MiB for the 2.9 MB of a 10,000-route
	// file (the YAML library's tree alone is 25 bytes a byte).
	LoadBytesPerByte = 48
	// MinPrefault is the least Prefault touches: below it the faults
	// saved are not worth a collection.
	MinPrefault = 16 << 20
	// MaxPrefault bounds what Prefault touches.
	MaxPrefault = 256 << 20
)

// PrefaultLoad is Prefault sized for loading a config of text bytes.
func PrefaultLoad(text int64) (done func()) {
	return Prefault(int(min(text, MaxPrefault/LoadBytesPerByte) * LoadBytesPerByte))
}

// Prefault makes the heap's next n bytes of allocation (at most
// MaxPrefault, half the soft memory limit, and a quarter of the memory
// the system or the process's cgroup has room for; rounded down to 2 MiB)
// already resident, and returns the function that ends it; call it when
// the allocating work is done. It does nothing (and done nothing) below
// MinPrefault, on systems other than Linux, or when GATEHOUSE_PREFAULT is
// "off".
//
// Why: a fresh page costs a page fault at its first touch, and on a
// virtual machine a fault is dear (8 µs measured here, a 10,000-route
// start faulting 41,000 pages: half its CPU). Prefault takes n bytes
// from the heap as one object, asks the kernel for transparent huge
// pages over them (where its setting is "madvise" or "always"),
// populates them with a system call a core (MADV_POPULATE_WRITE, Linux
// 5.14), then collects the object, so that the heap carves the load's
// objects out of those pages: a few hundred 2 MiB faults instead of tens of
// thousands, and fewer TLB misses while the load walks its tree. done
// withdraws the huge-page advice, so that later the kernel does not
// assemble huge pages over memory the heap has given back.
//
// The cost: one collection (a millisecond on a young heap), zeroing the
// pages, and resident memory the load would mostly have touched anyway;
// what it does not use the runtime returns to the system in the
// background as it returns any free heap.
func Prefault(n int) (done func()) {
	if n <= 0 || os.Getenv("GATEHOUSE_PREFAULT") == "off" {
		return func() {}
	}
	return prefault(min(n, MaxPrefault))
}
