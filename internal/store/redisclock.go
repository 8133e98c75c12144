package store

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Late execution. A call that charges (Allow with a cost, IncrBy with a
// positive n) carries a deadline on the Redis server's clock: the moment,
// as Redis's TIME reads it, after which the caller has given up. The
// script compares TIME with it and charges nothing when it runs later.
// Without that, a call that timed out while Redis stalled (a slow
// command, DEBUG SLEEP, CLIENT PAUSE, a fork on a loaded host) is still
// sitting in the server's input buffer, and runs when Redis resumes: the
// gateway has answered by the route's failure mode, yet the limit is
// charged for a request that was never admitted.
//
// The deadline is converted to the server's clock with a lower bound of
// the offset between the two clocks, taken from TIME samples (see
// redisClock), and is brought forward by chargeMargin. So a call that
// Redis runs before its server deadline ran, in the gateway's time, at
// least chargeMargin before the gateway gave up. Such a call may still
// have its reply held behind a stall (Redis writes replies at the end of
// its event loop's turn); Redis.charge keeps reading for lateReplyWait
// and takes the charge back when the late reply says it charged. What
// remains charged for a caller who gave up is a call whose reply never
// comes (the connection or the server died) or whose undo fails.

const (
	// chargeMargin is how much earlier than the caller's deadline Redis
	// must run a charging call for it to charge. It absorbs the reply's
	// way back and the reading goroutine's scheduling.
	chargeMargin = 2 * time.Millisecond
	// clockDrift bounds how fast the two clocks may drift apart: NTP
	// slews a clock by at most 500 ppm. A sample's bound on the offset
	// widens by this fraction of its age.
	clockDrift = 500e-6
	// resampleAfter is the age after which the sampler takes a new TIME
	// sample of every node in use, so that drift widens the bound by at
	// most resampleAfter*clockDrift (+ the sampler's tick), 3 ms.
	resampleAfter = 5 * time.Second
	// sampleTick is how often the sampler looks at the samples' ages.
	sampleTick = time.Second
)

// clockSample is one TIME round trip: the server read server (µs since
// the epoch) between sent and got, this process's clock (monotonic).
type clockSample struct {
	sent, got time.Time
	server    int64
}

// lower is a lower bound of the server's clock, in µs, at our instant at:
// the server read server no later than got, and its clock advances by at
// least 1-clockDrift (at most 1+clockDrift) of ours.
func (s clockSample) lower(at time.Time) float64 {
	d := float64(at.Sub(s.got).Microseconds())
	if d < 0 {
		return float64(s.server) + d*(1+clockDrift)
	}
	return float64(s.server) + d*(1-clockDrift)
}

// upper is an upper bound of the server's clock, in µs, at our instant at.
func (s clockSample) upper(at time.Time) float64 {
	d := float64(at.Sub(s.sent).Microseconds())
	if d < 0 {
		return float64(s.server) + d*(1-clockDrift)
	}
	return float64(s.server) + d*(1+clockDrift)
}

// redisClock keeps, per Redis node, the sample giving the best lower bound
// of the node's clock. Node "" is the one server of a single or Sentinel
// setup (after a failover the new master's first samples replace the old
// one's, see add); cluster nodes are keyed by address.
type redisClock struct {
	mu    sync.Mutex
	nodes map[string]clockSample
}

// add records a sample of node. It replaces the kept one when it bounds
// the clock better now, or when the two contradict each other (their
// ranges do not overlap: the clock was stepped, or a failover put a node
// with another clock behind the name), since then the old one is wrong.
func (c *redisClock) add(node string, s clockSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes == nil {
		c.nodes = make(map[string]clockSample)
	}
	old, ok := c.nodes[node]
	if !ok || s.lower(s.got) >= old.lower(s.got) || s.lower(s.got) > old.upper(s.got) || s.upper(s.got) < old.lower(s.got) {
		c.nodes[node] = s
	}
}

// get returns node's kept sample.
func (c *redisClock) get(node string) (clockSample, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.nodes[node]
	return s, ok
}

// forget drops node's sample (a node no longer in use).
func (c *redisClock) forget(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, node)
}

// stale lists the nodes whose sample is older than resampleAfter at now.
func (c *redisClock) stale(now time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n, s := range c.nodes {
		if now.Sub(s.got) >= resampleAfter {
			out = append(out, n)
		}
	}
	return out
}

// sample reads TIME through cmd and records it for node.
func (c *redisClock) sample(ctx context.Context, node string, cmd redis.Cmdable) error {
	sent := time.Now()
	t, err := cmd.Time(ctx).Result()
	got := time.Now()
	if err != nil {
		return err
	}
	c.add(node, clockSample{sent: sent, got: got, server: t.UnixMicro()})
	return nil
}

// serverDeadline converts deadline, on our clock, to the server's (µs),
// chargeMargin earlier, with node's sample s: the server reaches the
// result no earlier than our deadline-chargeMargin. The result is at
// least 1 (0 means "no deadline" to the scripts).
func serverDeadline(s clockSample, deadline time.Time) int64 {
	return max(1, int64(s.lower(deadline.Add(-chargeMargin))))
}
