package ratelimit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy/limitkey"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// BenchmarkLocalDecision is the decision path of a local limit: building
// the key value from the request in a stack buffer, hashing it and one
// GCRA step over two limits, for 1000 clients.
func BenchmarkLocalDecision(b *testing.B) {
	spec, err := limitkey.Parse(policytest.Node(b, ""), "key", "header:X-Client", nil)
	if err != nil {
		b.Fatal(err)
	}
	limits := gcraLimits([]store.Limit{{Rate: 1 << 20, Period: time.Second}, {Rate: 1 << 30, Period: time.Minute}})
	l := NewLocal()
	exs := make([]*http.Request, 1000)
	for i := range exs {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Client", "client-"+strconv.Itoa(i))
		exs[i] = r
	}
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ex := policytest.Exchange(exs[0])
		i := 0
		for pb.Next() {
			ex.Request = exs[i%len(exs)]
			i++
			var buf [keyBuf]byte
			kb, _ := spec.Append(ctx, buf[:0], ex)
			if d := l.Allow(kb, now, limits, 1); !d.Allowed {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkApplyLocal is the whole policy with the local limiter,
// RateLimit headers included.
func BenchmarkApplyLocal(b *testing.B) {
	env := policytest.Env()
	env.Now = time.Now
	p, err := New(policytest.Node(b, "key: header:X-Client\nlimits:\n  - {rate: 1000000, per: 1s, burst: 100000000}\n"), env)
	if err != nil {
		b.Fatal(err)
	}
	l := p.(*Limiter)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Client", "alice")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ex := policytest.Exchange(r)
		if err := l.Apply(ctx, ex); err != nil {
			b.Fatal(err)
		}
	}
}

// redisCalls returns the number of calls of cmd Redis has served
// (INFO commandstats), to count round trips.
func redisCalls(b *testing.B, addr string, cmds ...string) int64 {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "INFO commandstats\r\n")
	rd := bufio.NewReader(c)
	line, _ := rd.ReadString('\n') // $<len>
	n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, l := range strings.Split(string(buf), "\r\n") {
		for _, cmd := range cmds {
			if rest, ok := strings.CutPrefix(l, "cmdstat_"+cmd+":calls="); ok {
				v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				total += v
			}
		}
	}
	return total
}

// BenchmarkRedisDecision is one decision through the Redis store from
// parallel goroutines; it reports the script calls per decision, each a
// round trip. (The GET and SET the script runs inside Redis show in
// commandstats too but cost no round trip; they are checked to be the
// script's, 2 per limit, so no other command was sent.)
func BenchmarkRedisDecision(b *testing.B) {
	srv := redistest.Start(b)
	st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: b.Name() + ":"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	env := policytest.Env()
	env.Store = st
	p, err := New(policytest.Node(b, "key: header:X-Client\nlimits:\n  - {rate: 1000000, per: 1s}\n  - {rate: 100000000, per: 1h}\n"), env)
	if err != nil {
		b.Fatal(err)
	}
	l := p.(*Limiter)
	ctx := context.Background()
	// Load the script first so the count is of steady state.
	l.Apply(ctx, policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil)))
	before := redisCalls(b, srv.Addr(), "evalsha", "eval", "script|load")
	inner := redisCalls(b, srv.Addr(), "get", "set")
	var mu sync.Mutex
	n := 0
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Client", "c")
		k := 0
		for pb.Next() {
			if err := l.Apply(ctx, policytest.Exchange(r)); err != nil {
				b.Error(err)
				return
			}
			k++
		}
		mu.Lock()
		n += k
		mu.Unlock()
	})
	after := redisCalls(b, srv.Addr(), "evalsha", "eval", "script|load")
	innerAfter := redisCalls(b, srv.Addr(), "get", "set")
	// Nothing but the script ran: its GET and SET are 2 per limit.
	if got, want := innerAfter-inner, int64(4*n); got != want {
		b.Errorf("GET/SET inside Redis: %d, want %d (4 per decision: other commands were sent?)", got, want)
	}
	b.ReportMetric(float64(after-before)/float64(n), "roundtrips/op")
}

// BenchmarkGatewayRedis is requests per second through a gateway whose
// route has a Redis-backed limit, from 16 concurrent keep-alive clients,
// with Redis round trips per request.
func BenchmarkGatewayRedis(b *testing.B) {
	srv := redistest.Start(b)
	up := upstream(b)
	inst := startGateway(b, redisStore(srv.Addr(), b.Name()), "{key: header:X-Client, rate: 1000000, per: 1s, burst: 100000000}", up, nil)
	get(b, inst.url, "warm")
	before := redisCalls(b, srv.Addr(), "evalsha", "eval", "script|load")
	var mu sync.Mutex
	n := 0
	b.SetParallelism(8) // 16 goroutines on 2 CPUs
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		k := 0
		for pb.Next() {
			if status, _ := get(b, inst.url, "c"); status != 200 {
				b.Errorf("status %d", status)
				return
			}
			k++
		}
		mu.Lock()
		n += k
		mu.Unlock()
	})
	elapsed := time.Since(start)
	after := redisCalls(b, srv.Addr(), "evalsha", "eval", "script|load")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(after-before)/float64(n), "roundtrips/op")
}
