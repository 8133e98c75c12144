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
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
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

// Start tunes GOGC every interval until stop is called, which puts the
// base back. It does nothing, and stop nothing, when GOGC is set in the
// environment.
func Start(floor uint64, interval time.Duration) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	t := &tuner{floor: floor, base: base, current: base, done: make(chan struct{})}
	t.wg.Go(func() { t.loop(interval) })
	var once sync.Once
	return func() {
		once.Do(func() {
			close(t.done)
			t.wg.Wait()
			debug.SetGCPercent(base)
		})
	}
}

type tuner struct {
	floor         uint64
	base, current int
	done          chan struct{}
	wg            sync.WaitGroup
}

func (t *tuner) loop(interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			t.set(Percent(sample[0].Value.Uint64(), t.floor, t.base))
		}
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
	}
}

// set applies p when it differs from the current setting by more than a
// tenth: the live heap moves a little at every collection, and each change
// of GOGC recomputes the collector's pacing.
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
