package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is one backend under test: a fresh, empty store per case, and
// a way to let time pass for key expiry. fake reports whether advance
// also moves the clock Allow uses (not for Redis, which uses its own).
type harness struct {
	name string
	open func(t *testing.T) (st Store, advance func(time.Duration))
	fake bool
}

func memoryHarness() harness {
	return harness{name: "memory", fake: true, open: func(t *testing.T) (Store, func(time.Duration)) {
		c := newFakeClock()
		st := NewMemory(c.Now)
		t.Cleanup(func() { st.Close() })
		return st, c.Add
	}}
}

func fileHarness() harness {
	return harness{name: "file", fake: true, open: func(t *testing.T) (Store, func(time.Duration)) {
		c := newFakeClock()
		st, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), c.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, c.Add
	}}
}

var prefixSeq atomic.Int64

// redisHarness runs against addrs; each case gets its own key prefix.
// Redis's clock cannot be moved, so advance ages the case's keys instead:
// every TTL is shortened by d (keys whose TTL runs out are deleted), which
// is what the passing of d does to them.
func redisHarness(name string, addrs func(t *testing.T) []string) harness {
	return harness{name: name, open: func(t *testing.T) (Store, func(time.Duration)) {
		a := addrs(t)
		prefix := fmt.Sprintf("conf%d:", prefixSeq.Add(1))
		st, err := NewRedis(RedisOptions{Addrs: a, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		raw := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: a})
		t.Cleanup(func() { raw.Close() })
		advance := func(d time.Duration) {
			ctx := context.Background()
			var keys []string
			_ = st.Scan(ctx, "", func(k string, _ []byte) bool { keys = append(keys, prefix+k); return true })
			for _, k := range keys {
				ttl, err := raw.PTTL(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case ttl < 0: // no expiry
				case ttl <= d:
					raw.Del(ctx, k)
				default:
					raw.PExpire(ctx, k, ttl-d)
				}
			}
		}
		return st, advance
	}}
}

// conformance is the behaviour every backend must have.
var conformance = []struct {
	name     string
	fakeOnly bool
	run      func(t *testing.T, st Store, advance func(time.Duration))
}{
	{"get set delete", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		ctx := context.Background()
		if _, err := st.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(absent) err = %v, want ErrNotFound", err)
		}
		if err := st.Set(ctx, "k", []byte("v1"), 0); err != nil {
			t.Fatal(err)
		}
		if err := st.Set(ctx, "k", []byte("v2"), 0); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, "k")
		if err != nil || string(got) != "v2" {
			t.Fatalf("Get = %q, %v; want v2", got, err)
		}
		if err := st.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete(absent) = %v, want nil", err)
		}
		if _, err := st.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(deleted) err = %v, want ErrNotFound", err)
		}
	}},
	{"expiry", false, func(t *testing.T, st Store, advance func(time.Duration)) {
		ctx := context.Background()
		must(t, st.Set(ctx, "set", []byte("v"), 10*time.Second))
		must(t, st.Set(ctx, "forever", []byte("v"), 0))
		if ok, err := st.SetNX(ctx, "nx", []byte("v"), 10*time.Second); !ok || err != nil {
			t.Fatalf("SetNX = %v, %v; want true", ok, err)
		}
		incr(t, st, "ctr", 5, 10*time.Second, 5)
		advance(9 * time.Second)
		for _, k := range []string{"set", "nx", "ctr", "forever"} {
			if _, err := st.Get(ctx, k); err != nil {
				t.Errorf("Get(%s) after 9s of 10s: %v", k, err)
			}
		}
		if ok, _ := st.SetNX(ctx, "nx", []byte("w"), 10*time.Second); ok {
			t.Error("SetNX on a live key stored")
		}
		incr(t, st, "ctr", 1, 10*time.Second, 6) // keeps its expiry
		advance(2 * time.Second)
		for _, k := range []string{"set", "nx", "ctr"} {
			if _, err := st.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%s) after 11s of 10s: err = %v, want ErrNotFound", k, err)
			}
		}
		if ok, err := st.SetNX(ctx, "nx", []byte("w"), 10*time.Second); !ok || err != nil {
			t.Errorf("SetNX on an expired key = %v, %v; want true", ok, err)
		}
		incr(t, st, "ctr", 1, 10*time.Second, 1) // starts again from 0
		advance(1000 * time.Hour)
		if got, err := st.Get(ctx, "forever"); err != nil || string(got) != "v" {
			t.Errorf("Get(forever) = %q, %v", got, err)
		}
	}},
	{"setnx race", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				ok, err := st.SetNX(context.Background(), "nonce", []byte{byte(i)}, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Fatalf("%d SetNX calls won, want exactly 1", got)
		}
	}},
	{"incrby concurrent", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 25 {
					if _, err := st.IncrBy(context.Background(), "ctr", 2, time.Minute); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		incr(t, st, "ctr", -1000, time.Minute, 0)
		got, err := st.Get(context.Background(), "ctr")
		if err != nil || string(got) != "0" {
			t.Fatalf("Get(counter) = %q, %v; want \"0\"", got, err)
		}
	}},
	{"incrby not integer", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		must(t, st.Set(context.Background(), "text", []byte("abc"), 0))
		if _, err := st.IncrBy(context.Background(), "text", 1, 0); !errors.Is(err, ErrNotInteger) {
			t.Fatalf("IncrBy(text) err = %v, want ErrNotInteger", err)
		}
		must(t, st.Set(context.Background(), "num", []byte("41"), 0))
		incr(t, st, "num", 1, 0, 42)
	}},
	{"allow exact under concurrency", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		// An hour, not the minute of the usual example, so that a slow,
		// shared machine cannot earn Redis's real clock a 101st unit.
		limits := []Limit{{Rate: 100, Period: time.Hour}}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 400 {
			wg.Go(func() {
				d, err := st.Allow(context.Background(), "client", limits, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if got := allowed.Load(); got != 100 {
			t.Fatalf("%d of 400 allowed, want exactly 100", got)
		}
	}},
	{"allow all or nothing", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		ctx := context.Background()
		limits := []Limit{{Rate: 10, Period: time.Hour}, {Rate: 3, Period: time.Hour}}
		for i := range 3 {
			d, err := st.Allow(ctx, "k", limits, 1)
			if err != nil || !d.Allowed || d.Limit != 1 || d.Remaining != 2-i {
				t.Fatalf("Allow #%d = %+v, %v; want allowed by limit 1 with %d remaining", i, d, err, 2-i)
			}
		}
		for range 5 {
			d, err := st.Allow(ctx, "k", limits, 1)
			if err != nil || d.Allowed || d.Limit != 1 || d.Remaining != 0 {
				t.Fatalf("Allow over limit 1 = %+v, %v; want refused by limit 1", d, err)
			}
		}
		// The refusals consumed nothing from limit 0: 3 of its 10 are used.
		d, err := st.Allow(ctx, "k", limits[:1], 0)
		if err != nil || !d.Allowed || d.Remaining != 7 {
			t.Fatalf("inspect limit 0 = %+v, %v; want 7 remaining", d, err)
		}
		// A refusal by the first limit, too, leaves the second untouched.
		d, err = st.Allow(ctx, "k", []Limit{{Rate: 1, Period: time.Hour, Burst: 1}, {Rate: 3, Period: time.Hour}}, 1)
		if err != nil || d.Allowed || d.Limit != 0 {
			t.Fatalf("Allow = %+v, %v; want refused by limit 0", d, err)
		}
		// Other keys are other buckets.
		if d, err := st.Allow(ctx, "other", limits, 3); err != nil || !d.Allowed || d.Remaining != 0 {
			t.Fatalf("Allow(other, 3) = %+v, %v; want allowed with 0 remaining", d, err)
		}
	}},
	{"allow values", true, func(t *testing.T, st Store, advance func(time.Duration)) {
		// 10 per second, burst 5: one unit every 100ms, at most 500ms of
		// credit. Expectations computed by hand from the GCRA.
		lim := []Limit{{Rate: 10, Period: time.Second, Burst: 5}}
		steps := []struct {
			advance time.Duration
			cost    int
			want    Decision
		}{
			{0, 1, Decision{Allowed: true, Remaining: 4, ResetAfter: 100 * time.Millisecond}},
			{0, 4, Decision{Allowed: true, Remaining: 0, ResetAfter: 500 * time.Millisecond}},
			{0, 1, Decision{Allowed: false, Remaining: 0, RetryAfter: 100 * time.Millisecond, ResetAfter: 500 * time.Millisecond}},
			{250 * time.Millisecond, 1, Decision{Allowed: true, Remaining: 1, ResetAfter: 350 * time.Millisecond}},
			{0, 0, Decision{Allowed: true, Remaining: 1, ResetAfter: 350 * time.Millisecond}},
			{0, 3, Decision{Allowed: false, Remaining: 1, RetryAfter: 150 * time.Millisecond, ResetAfter: 350 * time.Millisecond}},
			{0, 6, Decision{Allowed: false, Remaining: 1, RetryAfter: -1, ResetAfter: 350 * time.Millisecond}},
			{time.Second, 5, Decision{Allowed: true, Remaining: 0, ResetAfter: 500 * time.Millisecond}},
		}
		for i, s := range steps {
			advance(s.advance)
			got, err := st.Allow(context.Background(), "k", lim, s.cost)
			if err != nil {
				t.Fatal(err)
			}
			if got != s.want {
				t.Errorf("step %d (after %v, cost %d): got %+v, want %+v", i, s.advance, s.cost, got, s.want)
			}
		}
	}},
	{"allow values on the server clock", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		// An hour-scale limit, so that the real time the test takes is
		// far below one unit's interval (360s): remaining is exact and
		// durations are within a second of the hand-computed values.
		lim := []Limit{{Rate: 10, Period: time.Hour, Burst: 5}}
		steps := []struct {
			cost int
			want Decision
		}{
			{1, Decision{Allowed: true, Remaining: 4, ResetAfter: 360 * time.Second}},
			{4, Decision{Allowed: true, Remaining: 0, ResetAfter: 1800 * time.Second}},
			{1, Decision{Allowed: false, Remaining: 0, RetryAfter: 360 * time.Second, ResetAfter: 1800 * time.Second}},
		}
		for i, s := range steps {
			got, err := st.Allow(context.Background(), "k", lim, s.cost)
			if err != nil {
				t.Fatal(err)
			}
			near := func(a, b time.Duration) bool { return a <= b && b-a < time.Second }
			if got.Allowed != s.want.Allowed || got.Remaining != s.want.Remaining ||
				!near(got.RetryAfter, s.want.RetryAfter) || !near(got.ResetAfter, s.want.ResetAfter) {
				t.Errorf("step %d (cost %d): got %+v, want %+v (durations within a second below)", i, s.cost, got, s.want)
			}
		}
	}},
	{"allow invalid", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		for _, tc := range []struct {
			limits []Limit
			cost   int
		}{
			{nil, 1},
			{[]Limit{{Rate: 0, Period: time.Second}}, 1},
			{[]Limit{{Rate: 1, Period: 0}}, 1},
			{[]Limit{{Rate: 1, Period: time.Second, Burst: -1}}, 1},
			{[]Limit{{Rate: 1, Period: time.Second}}, -1},
		} {
			if _, err := st.Allow(context.Background(), "k", tc.limits, tc.cost); err == nil {
				t.Errorf("Allow(%+v, %d) = nil error, want one", tc.limits, tc.cost)
			}
		}
	}},
	{"scan", false, func(t *testing.T, st Store, advance func(time.Duration)) {
		ctx := context.Background()
		must(t, st.Set(ctx, "rev:1", []byte("a"), time.Hour))
		must(t, st.Set(ctx, "rev:2", []byte("b"), 0))
		must(t, st.Set(ctx, "rev:3", []byte("gone"), time.Second))
		must(t, st.Set(ctx, "other:1", []byte("c"), 0))
		must(t, st.Set(ctx, "re*:1", []byte("glob"), 0))
		incr(t, st, "rev:ctr", 7, 0, 7)
		if _, err := st.Allow(ctx, "rev:bucket", []Limit{{Rate: 1, Period: time.Hour}}, 1); err != nil {
			t.Fatal(err)
		}
		advance(2 * time.Second)
		got := map[string]string{}
		err := st.Scan(ctx, "rev:", func(k string, v []byte) bool {
			got[k] = string(v)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"rev:1": "a", "rev:2": "b", "rev:ctr": "7"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Scan(rev:) got %v, want %v", got, want)
		}
		n := 0
		must(t, st.Scan(ctx, "rev:", func(string, []byte) bool { n++; return false }))
		if n != 1 {
			t.Errorf("Scan stopped by fn called it %d times, want 1", n)
		}
		var all []string
		must(t, st.Scan(ctx, "", func(k string, _ []byte) bool { all = append(all, k); return true }))
		slices.Sort(all)
		if want := []string{"other:1", "re*:1", "rev:1", "rev:2", "rev:ctr"}; !slices.Equal(all, want) {
			t.Errorf("Scan(\"\") got %v, want %v", all, want)
		}
	}},
	{"publish subscribe", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, err := st.Subscribe(ctx, "revocations")
		must(t, err)
		bctx, bcancel := context.WithCancel(ctx)
		b, err := st.Subscribe(bctx, "revocations")
		must(t, err)
		other, err := st.Subscribe(ctx, "other")
		must(t, err)
		for _, m := range []string{"m1", "", "m3"} {
			must(t, st.Publish(ctx, "revocations", []byte(m)))
		}
		must(t, st.Publish(ctx, "other", []byte("o1")))
		for name, ch := range map[string]<-chan []byte{"a": a, "b": b} {
			for _, want := range []string{"m1", "", "m3"} {
				got := receive(t, ch)
				if got == nil || string(got) != want {
					t.Fatalf("subscriber %s got %q (nil: %v), want %q", name, got, got == nil, want)
				}
			}
		}
		// The other channel's first message is its own: nothing leaked.
		if got := receive(t, other); string(got) != "o1" {
			t.Fatalf("other channel got %q first, want o1", got)
		}
		bcancel()
		waitClosed(t, b)
		must(t, st.Publish(ctx, "revocations", []byte("m4")))
		if got := receive(t, a); string(got) != "m4" {
			t.Fatalf("after b left, a got %q, want m4", got)
		}
	}},
	{"close", false, func(t *testing.T, st Store, _ func(time.Duration)) {
		ctx := context.Background()
		ch, err := st.Subscribe(ctx, "c")
		must(t, err)
		must(t, st.Set(ctx, "k", []byte("v"), 0))
		must(t, st.Close())
		waitClosed(t, ch)
		if _, err := st.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close: err = %v, want ErrClosed", err)
		}
		if _, err := st.Allow(ctx, "k", []Limit{{Rate: 1, Period: time.Second}}, 1); !errors.Is(err, ErrClosed) {
			t.Errorf("Allow after Close: err = %v, want ErrClosed", err)
		}
		if _, err := st.Subscribe(ctx, "c"); !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe after Close: err = %v, want ErrClosed", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
	}},
}

func runConformance(t *testing.T, h harness) {
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) {
			if c.fakeOnly && !h.fake {
				t.Skipf("%s: needs a clock the test can move", h.name)
			}
			st, advance := h.open(t)
			c.run(t, st, advance)
		})
	}
}

func TestConformanceMemory(t *testing.T) { runConformance(t, memoryHarness()) }
func TestConformanceFile(t *testing.T)   { runConformance(t, fileHarness()) }

func TestConformanceRedis(t *testing.T) {
	srv := redistest.Start(t)
	runConformance(t, redisHarness("redis", func(*testing.T) []string { return []string{srv.Addr()} }))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func incr(t *testing.T, st Store, key string, n int64, ttl time.Duration, want int64) {
	t.Helper()
	got, err := st.IncrBy(context.Background(), key, n, ttl)
	if err != nil || got != want {
		t.Fatalf("IncrBy(%s, %d) = %d, %v; want %d", key, n, got, err, want)
	}
}

func receive(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed early")
		}
		return m
	case <-time.After(60 * time.Second):
		t.Fatal("no message within 60s")
	}
	return nil
}

func waitClosed(t *testing.T, ch <-chan []byte) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("subscription not closed within 5s")
		}
	}
}
