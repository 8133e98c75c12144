package revocation

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRevokedUntilExpiry(t *testing.T) {
	c := &clock{t: t0}
	l := New(c.now)
	l.Revoke("a", t0.Add(time.Minute))
	l.Revoke("", t0.Add(time.Minute))      // ignored
	l.Revoke("past", t0.Add(-time.Second)) // ignored
	for _, tc := range []struct {
		jti  string
		want bool
	}{{"a", true}, {"b", false}, {"", false}, {"past", false}} {
		if got := l.Revoked(tc.jti); got != tc.want {
			t.Errorf("Revoked(%q) = %v, want %v", tc.jti, got, tc.want)
		}
	}
	if l.Len() != 1 {
		t.Errorf("Len = %d, want 1", l.Len())
	}
	c.add(time.Minute)
	if l.Revoked("a") {
		t.Error("still revoked at its expiry")
	}
	l.Purge()
	if l.Len() != 0 {
		t.Errorf("Len = %d after Purge, want 0", l.Len())
	}
}

func TestRevokeKeepsLaterExpiry(t *testing.T) {
	c := &clock{t: t0}
	l := New(c.now)
	l.Revoke("a", t0.Add(time.Hour))
	l.Revoke("a", t0.Add(time.Minute))
	c.add(2 * time.Minute)
	if !l.Revoked("a") {
		t.Error("an earlier expiry shortened a revocation")
	}
}

func TestNilList(t *testing.T) {
	var l *List
	if l.Revoked("a") || l.Len() != 0 {
		t.Error("a nil list revoked something")
	}
}

// The list does not grow past the live revocations by much: expired ones
// are swept as new ones come in.
func TestBoundedByLiveEntries(t *testing.T) {
	c := &clock{t: t0}
	l := New(c.now)
	for i := range 100_000 {
		l.Revoke(strconv.Itoa(i), c.now().Add(10*time.Second))
		c.add(time.Second) // so about 10 are alive at any time
	}
	if got := l.Len(); got > 2*minPurge {
		t.Errorf("Len = %d with ~10 live revocations, want at most %d", got, 2*minPurge)
	}
}

func TestConcurrent(t *testing.T) {
	l := New(nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := strconv.Itoa(g*10000 + i)
				l.Revoke(id, time.Now().Add(time.Hour))
				if !l.Revoked(id) {
					t.Errorf("%s not revoked", id)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkRevoked(b *testing.B) {
	l := New(nil)
	for i := range 10000 {
		l.Revoke(strconv.Itoa(i), time.Now().Add(time.Hour))
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Revoked("5000")
	}
}
