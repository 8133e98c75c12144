package store

import (
	"testing"
	"time"
)

// TestRedisClockBounds checks the offset bookkeeping against a server
// clock we control: the deadline given to the server is never later, on
// the server's clock, than the caller's deadline minus chargeMargin, for
// any moment the server may have read its clock within the round trip;
// a better sample replaces a worse one, a worse one does not, and one
// that contradicts the kept sample (a clock step, another node after a
// failover) replaces it whatever its quality.
func TestRedisClockBounds(t *testing.T) {
	base := time.Now()
	const skew = int64(3_600_000_000) // the server is an hour ahead, in µs
	server := func(at time.Time) int64 { return at.UnixMicro() + skew }
	sample := func(sent time.Time, rtt, read time.Duration) clockSample {
		return clockSample{sent: sent, got: sent.Add(rtt), server: server(sent.Add(read))}
	}
	for _, tc := range []struct {
		name      string
		rtt, read time.Duration // the round trip, and when in it the server read its clock
	}{
		{"read at once", 10 * time.Millisecond, 0},
		{"read midway", 10 * time.Millisecond, 5 * time.Millisecond},
		{"read at the end", 10 * time.Millisecond, 10 * time.Millisecond},
		{"fast", 50 * time.Microsecond, 25 * time.Microsecond},
	} {
		s := sample(base, tc.rtt, tc.read)
		for _, ahead := range []time.Duration{time.Millisecond, 500 * time.Millisecond, 5 * time.Second} {
			deadline := s.got.Add(ahead)
			got := serverDeadline(s, deadline)
			limit := server(deadline.Add(-chargeMargin))
			if got > limit {
				t.Errorf("%s, deadline %v ahead: server deadline %d is %d µs after the caller's deadline - margin", tc.name, ahead, got, got-limit)
			}
			// And not needlessly early: within the round trip and the
			// drift allowance.
			slack := tc.rtt + time.Duration(float64(ahead)*clockDrift) + time.Microsecond*2
			if limit-got > slack.Microseconds() {
				t.Errorf("%s, deadline %v ahead: server deadline %d µs early, want at most %v", tc.name, ahead, limit-got, slack)
			}
		}
	}

	var c redisClock
	slow := sample(base, 20*time.Millisecond, 0)
	c.add("", slow)
	fast := sample(base.Add(time.Second), 100*time.Microsecond, 50*time.Microsecond)
	c.add("", fast)
	if s, _ := c.get(""); s != fast {
		t.Errorf("a sample with a 100 µs round trip did not replace one of 20 ms")
	}
	c.add("", sample(base.Add(2*time.Second), 30*time.Millisecond, 0))
	if s, _ := c.get(""); s != fast {
		t.Errorf("a 30 ms sample replaced a 100 µs one a second old")
	}
	// The server's clock steps back by a minute (or a failover put a
	// node with another clock behind the name): the new sample, however
	// slow, contradicts the kept one and replaces it.
	stepped := clockSample{sent: base.Add(3 * time.Second), got: base.Add(3*time.Second + 30*time.Millisecond), server: server(base.Add(3*time.Second)) - 60_000_000}
	c.add("", stepped)
	if s, _ := c.get(""); s != stepped {
		t.Errorf("a sample contradicting the kept one did not replace it")
	}
	if got := c.stale(base.Add(3*time.Second + resampleAfter + 31*time.Millisecond)); len(got) != 1 {
		t.Errorf("stale after %v: %v, want the one node", resampleAfter, got)
	}
	if got := c.stale(base.Add(4 * time.Second)); len(got) != 0 {
		t.Errorf("stale after a second: %v, want none", got)
	}
}
