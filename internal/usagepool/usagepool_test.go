package usagepool

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type res struct {
	closed atomic.Int32
	err    error
}

func (r *res) Close() error { r.closed.Add(1); return r.err }

type other struct{}

func (other) Close() error { return nil }

func TestSharedUntilLastRelease(t *testing.T) {
	p := New()
	builds := 0
	build := func() (*res, error) { builds++; return &res{}, nil }
	a, relA, err := Acquire(p, "k", build)
	if err != nil {
		t.Fatal(err)
	}
	b, relB, err := Acquire(p, "k", build)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || builds != 1 {
		t.Fatalf("got %p and %p after %d builds, want one shared value", a, b, builds)
	}
	if got := p.Refs("k"); got != 2 {
		t.Errorf("Refs = %d, want 2", got)
	}
	relA()
	relA() // a second release of the same use does nothing
	if got := a.closed.Load(); got != 0 {
		t.Fatalf("closed %d times with a user left, want 0", got)
	}
	if got := p.Refs("k"); got != 1 {
		t.Errorf("Refs = %d, want 1", got)
	}
	relB()
	if got := a.closed.Load(); got != 1 {
		t.Fatalf("closed %d times after the last release, want 1", got)
	}
	if p.Len() != 0 {
		t.Errorf("Len = %d after the last release, want 0", p.Len())
	}
	c, relC, _ := Acquire(p, "k", build)
	defer relC()
	if c == a || builds != 2 {
		t.Errorf("after the last release got the old value back (builds %d)", builds)
	}
}

// A reload acquires the new config's use before it releases the old one's:
// the value survives.
func TestReloadOrderKeepsValue(t *testing.T) {
	p := New()
	builds := 0
	build := func() (*res, error) { builds++; return &res{}, nil }
	old, relOld, _ := Acquire(p, "jwks https://idp", build)
	cur, relNew, _ := Acquire(p, "jwks https://idp", build)
	relOld()
	if old != cur || builds != 1 || cur.closed.Load() != 0 {
		t.Fatalf("builds %d, closed %d: want the value kept across the reload", builds, cur.closed.Load())
	}
	relNew()
}

func TestBuildErrorNotKept(t *testing.T) {
	p := New()
	boom := errors.New("boom")
	if _, _, err := Acquire(p, "k", func() (*res, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d after a failed build, want 0", p.Len())
	}
	v, rel, err := Acquire(p, "k", func() (*res, error) { return &res{}, nil })
	if err != nil || v == nil {
		t.Fatalf("retry: %v", err)
	}
	rel()
}

func TestCloseErrorReturnedByLastRelease(t *testing.T) {
	p := New()
	boom := errors.New("close failed")
	_, rel, _ := Acquire(p, "k", func() (*res, error) { return &res{err: boom}, nil })
	if err := rel(); !errors.Is(err, boom) {
		t.Errorf("got %v, want the Close error", err)
	}
}

func TestTypeMismatch(t *testing.T) {
	p := New()
	_, rel, _ := Acquire(p, "k", func() (*res, error) { return &res{}, nil })
	defer rel()
	if _, _, err := Acquire(p, "k", func() (other, error) { return other{}, nil }); err == nil {
		t.Fatal("got no error for a value of another type")
	}
	if got := p.Refs("k"); got != 1 {
		t.Errorf("Refs = %d after the mismatch, want 1", got)
	}
}

func TestNilPoolSharesNothing(t *testing.T) {
	var p *Pool
	a, relA, _ := Acquire(p, "k", func() (*res, error) { return &res{}, nil })
	b, relB, _ := Acquire(p, "k", func() (*res, error) { return &res{}, nil })
	if a == b {
		t.Fatal("a nil pool shared a value")
	}
	relA()
	if a.closed.Load() != 1 || b.closed.Load() != 0 {
		t.Errorf("closed a=%d b=%d, want 1 and 0", a.closed.Load(), b.closed.Load())
	}
	relB()
}

func TestConcurrentAcquireBuildsOnce(t *testing.T) {
	p := New()
	var builds atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	vals := make([]*res, 16)
	rels := make([]func() error, 16)
	for i := range vals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals[i], rels[i], _ = Acquire(p, "k", func() (*res, error) {
				builds.Add(1)
				<-gate
				return &res{}, nil
			})
		}()
	}
	close(gate)
	wg.Wait()
	if got := builds.Load(); got != 1 {
		t.Fatalf("built %d times, want 1", got)
	}
	for i := range vals {
		if vals[i] != vals[0] {
			t.Fatal("callers got different values")
		}
	}
	for i, rel := range rels {
		rel()
		if want := int32(0); i < len(rels)-1 && vals[0].closed.Load() != want {
			t.Fatal("closed before the last release")
		}
	}
	if vals[0].closed.Load() != 1 {
		t.Error("not closed after the last release")
	}
}

// Each visits the built values of its type under the prefix, and neither
// values being built, nor released ones, nor other types or prefixes.
func TestEach(t *testing.T) {
	p := New()
	a, relA, _ := Acquire(p, "x/a", func() (*res, error) { return &res{}, nil })
	b, relB, _ := Acquire(p, "x/b", func() (*res, error) { return &res{}, nil })
	_, relC, _ := Acquire(p, "y/c", func() (*res, error) { return &res{}, nil })
	_, relO, _ := Acquire(p, "x/o", func() (other, error) { return other{}, nil })
	defer relA()
	defer relC()
	defer relO()

	building := make(chan struct{})
	built := make(chan struct{})
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		_, rel, _ := Acquire(p, "x/slow", func() (*res, error) {
			close(building)
			<-built
			return &res{}, nil
		})
		rel()
	}()
	<-building
	visit := func() map[string]*res {
		got := map[string]*res{}
		Each(p, "x/", func(k string, v *res) {
			// f may use the pool.
			if p.Refs(k) == 0 {
				t.Errorf("%s visited with no user", k)
			}
			got[k] = v
		})
		return got
	}
	got := visit()
	close(built)
	<-slowDone // built and released: gone
	if len(got) != 2 || got["x/a"] != a || got["x/b"] != b {
		t.Errorf("visited %v, want x/a and x/b", got)
	}
	relB()
	if got := visit(); len(got) != 1 || got["x/a"] != a {
		t.Errorf("after a release, visited %v, want x/a", got)
	}
	var nilPool *Pool
	Each(nilPool, "", func(string, *res) { t.Error("a nil pool has values") })
}
