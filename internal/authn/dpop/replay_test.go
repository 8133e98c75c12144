package dpop

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestMemoryReplayCache(t *testing.T) {
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewMemoryReplayCache(2, func() time.Time { return clock })
	ctx := context.Background()
	seen := func(key string, exp time.Duration) bool {
		t.Helper()
		s, err := c.Seen(ctx, key, clock.Add(exp))
		if err != nil {
			t.Fatalf("Seen(%s): %v", key, err)
		}
		return s
	}
	if seen("a", time.Minute) {
		t.Fatal("a seen before first use")
	}
	if !seen("a", time.Minute) {
		t.Fatal("a not seen on second use")
	}
	if seen("b", 2*time.Minute) {
		t.Fatal("b seen before first use")
	}
	// Full of live entries: fail closed rather than forget one.
	if _, err := c.Seen(ctx, "c", clock.Add(time.Minute)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("got %v, want ErrReplayCacheFull", err)
	}
	// a expires: its slot is reused and a itself may come back.
	clock = clock.Add(time.Minute)
	if seen("c", time.Minute) {
		t.Fatal("c seen before first use")
	}
	if got, want := c.Len(), 2; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
	clock = clock.Add(time.Minute)
	if seen("a", time.Minute) {
		t.Fatal("expired a still seen")
	}
	if !seen("a", time.Minute) {
		t.Fatal("a not seen after being recorded again")
	}
}

func BenchmarkMemoryReplayCache(b *testing.B) {
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewMemoryReplayCache(DefaultReplayCacheSize, func() time.Time { return clock })
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "thumbprint-of-the-client-key-xxxxxxxxxxxxx." + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Each key lives one tick, so the cache stays at a steady size.
		clock = clock.Add(time.Millisecond)
		if _, err := c.Seen(context.Background(), keys[i&(len(keys)-1)], clock.Add(time.Second)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestNormalizeURLRefuses(t *testing.T) {
	for _, s := range []string{"", "/a", "ftp://h/a", "https://user@h/a", "https:///a", "https://h/%zz", "mailto:a@b"} {
		if got, ok := normalizeURL(s); ok {
			t.Errorf("normalizeURL(%q) = %q, want refusal", s, got)
		}
	}
}
