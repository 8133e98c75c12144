package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faulty is a memory store whose calls fail with ErrUnavailable while
// broken is set, counting the calls that reach it.
type faulty struct {
	Store
	broken atomic.Bool
	calls  atomic.Int64
	// gate, when set, holds a call after it failed until closed, to
	// let a test finish an outage before the failure is reported.
	gate chan struct{}
}

func (f *faulty) Get(ctx context.Context, key string) ([]byte, error) {
	f.calls.Add(1)
	if f.broken.Load() {
		return nil, fmt.Errorf("%w: injected", ErrUnavailable)
	}
	return f.Store.Get(ctx, key)
}

func (f *faulty) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	f.calls.Add(1)
	if f.broken.Load() {
		if f.gate != nil {
			<-f.gate
		}
		return 0, fmt.Errorf("%w: injected", ErrUnavailable)
	}
	return f.Store.IncrBy(ctx, key, n, ttl)
}

type transitionLog struct {
	mu sync.Mutex
	ev []bool
}

func (l *transitionLog) add(up bool, _ error) {
	l.mu.Lock()
	l.ev = append(l.ev, up)
	l.mu.Unlock()
}

func (l *transitionLog) events() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.ev...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGuardOneTransitionPerOutage(t *testing.T) {
	ctx := context.Background()
	f := &faulty{Store: NewMemory(nil)}
	var log transitionLog
	g := Guard(f, HealthOptions{Interval: time.Millisecond, Confirm: 3, OnChange: log.add})
	defer g.Close()

	if _, err := g.IncrBy(ctx, "k", 1, 0); err != nil || !g.Up() {
		t.Fatalf("healthy store: %v, up %v", err, g.Up())
	}
	f.broken.Store(true)
	// Many concurrent failures: one transition down.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := g.IncrBy(ctx, "k", 1, 0); !errors.Is(err, ErrUnavailable) {
				t.Errorf("broken store: %v, want ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	if g.Up() {
		t.Fatal("up after failures")
	}
	// While down, calls fail without reaching the backend; only the
	// probe does.
	before := f.calls.Load()
	for range 100 {
		if _, err := g.IncrBy(ctx, "k", 1, 0); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("down: %v", err)
		}
	}
	if reached := f.calls.Load() - before; reached > 20 {
		t.Errorf("%d calls reached the backend while down (100 made); only probes should", reached)
	}
	f.broken.Store(false)
	waitUntil(t, "recovery", g.Up)
	if _, err := g.IncrBy(ctx, "k", 1, 0); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if got := log.events(); len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("transitions %v, want [down up]", got)
	}
	if d, u := g.Transitions(); d != 1 || u != 1 {
		t.Fatalf("Transitions() = %d, %d", d, u)
	}
}

// A failure of a call begun before a recovery belongs to the outage that
// is over: it must not take the store down again.
func TestGuardIgnoresStaleFailure(t *testing.T) {
	ctx := context.Background()
	f := &faulty{Store: NewMemory(nil), gate: make(chan struct{})}
	var log transitionLog
	g := Guard(f, HealthOptions{Interval: time.Millisecond, Confirm: 2, OnChange: log.add})
	defer g.Close()

	f.broken.Store(true)
	stale := make(chan error, 1)
	go func() { _, err := g.IncrBy(ctx, "slow", 1, 0); stale <- err }()
	waitUntil(t, "the slow call to reach the backend", func() bool { return f.calls.Load() == 1 })
	// Another call takes the store down (it is not held: the gate only
	// holds IncrBy, so use Get).
	if _, err := g.Get(ctx, "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get: %v", err)
	}
	f.broken.Store(false)
	waitUntil(t, "recovery", g.Up)
	f.broken.Store(true)
	close(f.gate) // the slow call now fails, after the recovery
	if err := <-stale; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("slow call: %v", err)
	}
	f.broken.Store(false)
	if !g.Up() {
		t.Fatal("a failure from before the recovery took the store down again")
	}
	if got := log.events(); len(got) != 2 {
		t.Fatalf("transitions %v, want [down up]", got)
	}
}

// Recovery needs Confirm successful probes in a row: a backend that
// answers every other probe stays down.
func TestGuardConfirmsRecovery(t *testing.T) {
	f := &flaky{Store: NewMemory(nil)}
	g := Guard(f, HealthOptions{Interval: time.Millisecond, Confirm: 3})
	defer g.Close()
	f.mode.Store(1) // always failing
	if _, err := g.Get(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	f.mode.Store(2) // alternating
	waitUntil(t, "probes", func() bool { return f.probes.Load() > 30 })
	if g.Up() {
		t.Fatal("up although no three probes in a row succeeded")
	}
	f.mode.Store(0)
	waitUntil(t, "recovery", g.Up)
}

type flaky struct {
	Store
	mode   atomic.Int32 // 0 healthy, 1 failing, 2 alternating
	probes atomic.Int64
}

func (f *flaky) Get(ctx context.Context, key string) ([]byte, error) {
	n := f.probes.Add(1)
	switch f.mode.Load() {
	case 1:
		return nil, ErrUnavailable
	case 2:
		if n%2 == 0 {
			return nil, ErrUnavailable
		}
	}
	return f.Store.Get(ctx, key)
}
