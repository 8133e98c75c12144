package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// localShards spreads buckets over independent locks.
const localShards = 64

// sweepSample is how many buckets an insert examines for expiry, as the
// memory store does: bounded work, keeping up with keys that go idle.
const sweepSample = 8

// Local is an in-process GCRA limiter over several limits at once, with
// the store's semantics (all-or-nothing over the limits, same Decision),
// used when the gateway's store is the memory store and as the fallback
// while the shared store is unreachable.
//
// It exists beside the memory store for speed: a decision allocates
// nothing. Buckets are found by a 64-bit maphash of the key value instead
// of the key string (so no string is built); two keys colliding would
// share a bucket, with odds of about n²/2⁶⁵ for n live keys, negligible
// next to any other error source. Safe for concurrent use.
type Local struct {
	seed   maphash.Seed
	shards [localShards]localShard
}

type localShard struct {
	mu sync.Mutex
	m  map[uint64]*[MaxLimits]int64 // TATs in unix ns by limit index
	_  [40]byte                     // keep shards on separate cache lines
}

// gcraLimit is a store.Limit in the form the decision uses.
type gcraLimit struct {
	interval int64 // ns per unit
	burst    int64
}

func gcraLimits(limits []store.Limit) []gcraLimit {
	out := make([]gcraLimit, len(limits))
	for i, l := range limits {
		out[i] = gcraLimit{interval: int64(l.Interval()), burst: int64(l.BurstOrRate())}
	}
	return out
}

// NewLocal returns an empty limiter.
func NewLocal() *Local {
	l := &Local{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[uint64]*[MaxLimits]int64)
	}
	return l
}

// Close implements io.Closer (for usagepool); it does nothing.
func (l *Local) Close() error { return nil }

// Allow decides whether cost units of key pass every limit at now, and
// consumes them from every limit if so. len(limits) <= MaxLimits.
func (l *Local) Allow(key []byte, now time.Time, limits []gcraLimit, cost int) store.Decision {
	h := maphash.Bytes(l.seed, key)
	s := &l.shards[h%localShards]
	t := now.UnixNano()
	s.mu.Lock()
	tats := s.m[h]
	if tats == nil {
		if cost == 0 {
			s.mu.Unlock()
			var empty [MaxLimits]int64
			return gcra(t, &empty, limits, 0)
		}
		s.sweep(t)
		tats = new([MaxLimits]int64)
		s.m[h] = tats
	}
	d := gcra(t, tats, limits, cost)
	s.mu.Unlock()
	return d
}

// sweep drops a few buckets that are full again (all TATs past); callers
// hold mu. Map iteration starts at a random place: that is the sample.
func (s *localShard) sweep(now int64) {
	i := 0
	for k, tats := range s.m {
		full := true
		for _, tat := range tats {
			if tat > now {
				full = false
				break
			}
		}
		if full {
			delete(s.m, k)
		}
		if i++; i == sweepSample {
			return
		}
	}
}

// gcra is the store's GCRA decision (store.Store.Allow) on tats: it
// refuses at the first limit that refuses, changing nothing; when all
// allow, it reports the limit with the fewest remaining units and, if
// cost > 0, advances every TAT.
func gcra(now int64, tats *[MaxLimits]int64, limits []gcraLimit, cost int) store.Decision {
	var best store.Decision
	var newTATs [MaxLimits]int64
	c := int64(cost)
	for i, l := range limits {
		offset := l.interval * l.burst
		tat := max(tats[i], now)
		nt := tat + l.interval*c
		diff := now - (nt - offset)
		if diff < 0 {
			d := store.Decision{Limit: i, RetryAfter: time.Duration(-diff), ResetAfter: time.Duration(tat - now)}
			if c > l.burst {
				d.RetryAfter = -1
			}
			if r := (now + offset - tat) / l.interval; r > 0 {
				d.Remaining = int(r)
			}
			return d
		}
		rem := int(diff / l.interval)
		if i == 0 || rem < best.Remaining {
			best = store.Decision{Limit: i, Allowed: true, Remaining: rem, ResetAfter: time.Duration(nt - now)}
		}
		newTATs[i] = nt
	}
	if cost > 0 {
		copy(tats[:len(limits)], newTATs[:len(limits)])
	}
	return best
}
