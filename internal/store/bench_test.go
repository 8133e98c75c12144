package store

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// benchStores opens each backend for a benchmark; the Redis one reports
// round trips per operation, counted by a go-redis hook.
func benchStores(b *testing.B, fn func(b *testing.B, st Store)) {
	b.Run("memory", func(b *testing.B) {
		st := NewMemory(nil)
		defer st.Close()
		fn(b, st)
	})
	b.Run("file", func(b *testing.B) {
		st, err := OpenFile(filepath.Join(b.TempDir(), "bench.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		fn(b, st)
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		st, err := NewRedis(RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: "bench:"})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		hook := &countHook{}
		st.client.AddHook(hook)
		benchHook = hook
		fn(b, st)
		b.ReportMetric(float64(hook.n.Load())/float64(b.N), "roundtrips/op")
	})
}

// BenchmarkAllow is a request under two limits (per second and per day),
// most of them allowed: every call writes.
func BenchmarkAllow(b *testing.B) {
	lim := []Limit{{Rate: 1_000_000, Period: time.Second}, {Rate: 1 << 40, Period: 24 * time.Hour}}
	benchStores(b, func(b *testing.B, st Store) {
		ctx := context.Background()
		st.Allow(ctx, "warm", lim, 1)
		st.IncrBy(ctx, "warm", 1, 0)
		if h, ok := st.(*Redis); ok {
			resetHook(h)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := st.Allow(ctx, "rl:"+strconv.Itoa(i%1000), lim, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAllowRefused is a client over its limit: the file store
// decides it in a read transaction.
func BenchmarkAllowRefused(b *testing.B) {
	lim := []Limit{{Rate: 1, Period: time.Hour}}
	benchStores(b, func(b *testing.B, st Store) {
		ctx := context.Background()
		st.Allow(ctx, "hot", lim, 1)
		if h, ok := st.(*Redis); ok {
			resetHook(h)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if d, err := st.Allow(ctx, "hot", lim, 1); err != nil || d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
}

func BenchmarkIncrBy(b *testing.B) {
	benchStores(b, func(b *testing.B, st Store) {
		ctx := context.Background()
		st.IncrBy(ctx, "warm", 1, time.Minute)
		if h, ok := st.(*Redis); ok {
			resetHook(h)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := st.IncrBy(ctx, "quota:"+strconv.Itoa(i%1000), 1, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSetNX(b *testing.B) {
	benchStores(b, func(b *testing.B, st Store) {
		ctx := context.Background()
		st.SetNX(ctx, "warm", nil, time.Minute)
		if h, ok := st.(*Redis); ok {
			resetHook(h)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := st.SetNX(ctx, "nonce:"+strconv.Itoa(i), []byte("1"), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAllowParallel shows the memory store's sharding and the file
// store's single writer under concurrency.
func BenchmarkAllowParallel(b *testing.B) {
	lim := []Limit{{Rate: 1_000_000, Period: time.Second}}
	benchStores(b, func(b *testing.B, st Store) {
		ctx := context.Background()
		st.Allow(ctx, "warm", lim, 1)
		if h, ok := st.(*Redis); ok {
			resetHook(h)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := st.Allow(ctx, "rl:"+strconv.Itoa(i%1000), lim, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// benchHook is the Redis benchmark's round-trip counter.
var benchHook *countHook

func resetHook(*Redis) { benchHook.n.Store(0) }
