package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

// TestRedisStallChargesNothingLate stalls a real Redis (DEBUG SLEEP, then
// CLIENT PAUSE) for 2 seconds under a load of charging calls that time
// out after 200 ms, and checks that the bucket and the counter were
// charged exactly what was admitted: the calls that timed out and ran
// when Redis resumed charged nothing.
//
// The same stall is put on a control load that makes the calls as the
// store made them before deadlines were carried (the GCRA script with no
// deadline, MULTI SET NX INCRBY EXEC): what it was charged beyond what
// it admitted is what late execution costs without the mechanism, and
// is logged ("before"); under DEBUG SLEEP it must be positive, or the
// test would not be testing anything.
//
// The stall begins with no call in flight (the loads wait while it is
// put on), so every call that times out is queued behind it: the
// deadline makes it charge nothing. The "in-flight" runs put the stall on
// while calls are in flight: Redis then runs them before it stalls and
// holds their replies behind the stall (a reply is written at the end of
// the event loop's turn); they were charged in time, and the late reply
// makes the store take the charge back. Both must end exactly at what
// was admitted; under DEBUG SLEEP with calls in flight, refunds must
// have happened (or the test did not exercise them).
//
// "reply-hold" stalls the way back instead: a proxy between the clients
// and Redis passes requests at once and holds Redis's replies for 2 s,
// so that every call runs in time and is answered too late: every charge
// must be taken back.
func TestRedisStallChargesNothingLate(t *testing.T) {
	srv := redistest.StartWith(t, "--enable-debug-command", "yes")
	for _, mode := range []string{"debug-sleep", "client-pause", "reply-hold"} {
		for _, inFlight := range []bool{false, true} {
			if mode == "reply-hold" && !inFlight {
				continue
			}
			name := mode
			if inFlight {
				name += "/in-flight"
			}
			t.Run(name, func(t *testing.T) {
				before, after, refunded := stallRun(t, srv.Addr(), mode, inFlight)
				t.Logf("%s, 2 s stall: charged beyond admitted without deadlines (control) %d, now %d (%d late charges taken back)", name, before, after, refunded)
				if after != 0 {
					t.Errorf("%d units were charged beyond those admitted, want 0", after)
				}
				if mode == "reply-hold" && refunded == 0 {
					t.Errorf("no late charge was taken back: no reply was held, the test shows nothing")
				}
				if mode != "client-pause" && before == 0 {
					t.Errorf("the control load was not charged late: the stall did not queue calls, the test shows nothing")
				}
			})
		}
	}
}

// stallRun runs both loads through one stall and returns the units
// charged beyond those admitted: control (no deadlines) and store.
// With inFlight false, no call is in flight when the stall begins.
func stallRun(t *testing.T, addr, mode string, inFlight bool) (control, guarded int64, refunded uint64) {
	const timeout = 200 * time.Millisecond
	prefix := "late-" + mode + ":" + strconv.FormatBool(inFlight) + ":"
	redisAddr := addr
	var proxy *holdProxy
	if mode == "reply-hold" {
		proxy = newHoldProxy(t, addr)
		addr = proxy.addr
	}
	st, err := NewRedis(RedisOptions{Addrs: []string{addr}, KeyPrefix: prefix + "new:", ReadTimeout: timeout, WriteTimeout: timeout, DialTimeout: timeout})
	must(t, err)
	defer st.Close()
	old := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: timeout, WriteTimeout: timeout, DialTimeout: timeout,
		MaxRetries: -1, ContextTimeoutEnabled: true})
	defer old.Close()
	admin := redis.NewClient(&redis.Options{Addr: redisAddr, ReadTimeout: 10 * time.Second, MaxRetries: -1})
	defer admin.Close()
	ctx := context.Background()

	lim := []Limit{{Rate: 100000, Period: 24 * time.Hour * 1000}} // no refill to speak of
	burst := int64(lim[0].BurstOrRate())
	oldBucket, oldCounter := prefix+"old:{@k}:0", prefix+"old:q"
	interval := strconv.FormatFloat(float64(lim[0].Period)/float64(lim[0].Rate)/1e3, 'g', -1, 64)
	oldAllow := func(ctx context.Context) bool {
		res, err := gcraScript.Run(ctx, old, []string{oldBucket}, 1, 0, interval, burst).Int64Slice()
		return err == nil && res[0] == 1
	}
	oldIncr := func(ctx context.Context) bool {
		_, err := old.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SetNX(ctx, oldCounter, 0, time.Hour)
			p.IncrBy(ctx, oldCounter, 1)
			return nil
		})
		return err == nil
	}
	newAllow := func(ctx context.Context) bool {
		d, err := st.Allow(ctx, "k", lim, 1)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("Allow: %v, want ErrUnavailable or nothing", err)
		}
		return err == nil && d.Allowed
	}
	newIncr := func(ctx context.Context) bool {
		_, err := st.IncrBy(ctx, "q", 1, time.Hour)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("IncrBy: %v, want ErrUnavailable or nothing", err)
		}
		return err == nil
	}

	// The loads: 8 goroutines per kind of call, from before the stall
	// until it is over.
	var stop atomic.Bool
	var gate sync.RWMutex        // held by the stall's start when !inFlight
	var admitted [4]atomic.Int64 // old allow, old incr, new allow, new incr
	calls := []func(context.Context) bool{oldAllow, oldIncr, newAllow, newIncr}
	var wg sync.WaitGroup
	for i, call := range calls {
		for range 8 {
			wg.Go(func() {
				for !stop.Load() {
					gate.RLock()
					if call(ctx) {
						admitted[i].Add(1)
					}
					gate.RUnlock()
				}
			})
		}
	}
	waitFor(t, 10*time.Second, "calls admitted before the stall", func() bool {
		return admitted[0].Load() > 0 && admitted[1].Load() > 0 && admitted[2].Load() > 0 && admitted[3].Load() > 0
	})

	if !inFlight {
		gate.Lock()
	}
	stallDone := make(chan error, 1)
	switch mode {
	case "debug-sleep":
		go func() { stallDone <- admin.Do(ctx, "DEBUG", "SLEEP", "2").Err() }()
	case "client-pause":
		must(t, admin.Do(ctx, "CLIENT", "PAUSE", "2000", "ALL").Err())
		go func() { stallDone <- nil }()
	case "reply-hold":
		proxy.hold()
		go func() { stallDone <- nil }()
	}
	// The stall is on once a PING goes unanswered for 50 ms.
	probe := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer probe.Close()
	waitFor(t, 10*time.Second, "Redis to stall", func() bool { return probe.Ping(ctx).Err() != nil })
	if !inFlight {
		gate.Unlock()
	}
	if err := <-stallDone; err != nil {
		t.Fatalf("stall: %v", err)
	}
	if proxy != nil {
		time.Sleep(2 * time.Second) // the stall's length, as DEBUG SLEEP 2
		proxy.release()
	}
	// Over once a PING is answered (this one waits for the stall's end).
	must(t, admin.Ping(ctx).Err())
	a2, a3 := admitted[2].Load(), admitted[3].Load()
	waitFor(t, 10*time.Second, "calls admitted after the stall", func() bool {
		return admitted[2].Load() > a2 && admitted[3].Load() > a3
	})
	stop.Store(true)
	wg.Wait()
	// Everything queued during the stall has run once Redis has gone
	// quiet: the script and transaction counts stop moving.
	quiet(t, admin)

	rem := func(k string) int64 {
		res, err := gcraScript.Run(ctx, admin, []string{k}, 0, 0, interval, burst).Int64Slice()
		must(t, err)
		return res[2]
	}
	count := func(k string) int64 {
		v, err := admin.Get(ctx, k).Int64()
		if errors.Is(err, redis.Nil) {
			return 0
		}
		must(t, err)
		return v
	}
	oldCharged := (burst - rem(oldBucket)) + count(oldCounter)
	newCharged := (burst - rem(st.bucketKey("k", 0))) + count(prefix+"new:q")
	oldAdmitted := admitted[0].Load() + admitted[1].Load()
	newAdmitted := admitted[2].Load() + admitted[3].Load()
	t.Logf("control: admitted %d+%d, charged %d+%d; store: admitted %d+%d, charged %d+%d (allow+incr)",
		admitted[0].Load(), admitted[1].Load(), burst-rem(oldBucket), count(oldCounter),
		admitted[2].Load(), admitted[3].Load(), burst-rem(st.bucketKey("k", 0)), count(prefix+"new:q"))
	refunded, failed := st.LateRefunds()
	if failed != 0 {
		t.Errorf("%d late charges could not be taken back", failed)
	}
	return oldCharged - oldAdmitted, newCharged - newAdmitted, refunded
}

// holdProxy is a TCP proxy to Redis that passes requests at once and,
// while held, keeps Redis's replies back.
type holdProxy struct {
	addr string
	mu   sync.Mutex
	gate chan struct{} // closed when replies may flow; replaced by hold
}

func newHoldProxy(t *testing.T, target string) *holdProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &holdProxy{addr: ln.Addr().String(), gate: make(chan struct{})}
	close(p.gate)
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			go func() { // requests: at once
				defer conns.Done()
				io.Copy(s, c)
				s.Close()
			}()
			go func() { // replies: not while held
				defer conns.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						p.mu.Lock()
						g := p.gate
						p.mu.Unlock()
						<-g
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *holdProxy) hold() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

func (p *holdProxy) release() {
	p.mu.Lock()
	close(p.gate)
	p.mu.Unlock()
}

// quiet waits until Redis has run no script, transaction or INCRBY for
// 300 ms.
func quiet(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	last, since := "", time.Now()
	waitFor(t, 20*time.Second, "Redis to go quiet", func() bool {
		info, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			return false
		}
		var s string
		for l := range strings.Lines(info) {
			for _, cmd := range []string{"cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_exec:", "cmdstat_incrby:"} {
				if strings.HasPrefix(l, cmd) {
					s += l
				}
			}
		}
		if s != last {
			last, since = s, time.Now()
			return false
		}
		return time.Since(since) > 300*time.Millisecond
	})
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
