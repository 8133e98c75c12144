package store

import (
	"errors"
	"fmt"
	"time"
)

// checkAllow validates Allow's arguments, the same way for every backend.
func checkAllow(limits []Limit, cost int) error {
	if len(limits) == 0 {
		return errors.New("store: allow: no limits")
	}
	if cost < 0 {
		return fmt.Errorf("store: allow: negative cost %d", cost)
	}
	for i, l := range limits {
		if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 || l.Period < time.Duration(l.Rate) {
			return fmt.Errorf("store: allow: limit %d: invalid rate %d per %v, burst %d", i, l.Rate, l.Period, l.Burst)
		}
	}
	return nil
}

// gcraStep is one limit's GCRA decision at now (nanoseconds), given the
// bucket's theoretical arrival time tat (0: empty bucket). The Redis Lua
// script is the same computation in microseconds.
//
// The bucket allows cost units when the new TAT (tat + cost intervals) is
// no more than Burst intervals ahead of now. Remaining is how many more
// single units would pass right after, ResetAfter how long until the
// bucket is full again.
func gcraStep(now, tat int64, l Limit, cost int) (d Decision, newTAT int64) {
	interval := int64(l.Interval())
	burst := int64(l.BurstOrRate())
	offset := interval * burst
	if tat < now {
		tat = now
	}
	newTAT = tat + interval*int64(cost)
	diff := now - (newTAT - offset)
	if diff < 0 {
		d.RetryAfter = time.Duration(-diff)
		if int64(cost) > burst {
			d.RetryAfter = -1
		}
		if r := (now + offset - tat) / interval; r > 0 {
			d.Remaining = int(r)
		}
		d.ResetAfter = time.Duration(tat - now)
		return d, tat
	}
	d.Allowed = true
	d.Remaining = int(diff / interval)
	d.ResetAfter = time.Duration(newTAT - now)
	return d, newTAT
}

// gcraAll decides over every limit with the buckets' TATs in tats (same
// length as limits, 0 for empty buckets) and, when all allow, writes the
// new TATs into tats and reports true. On refusal tats is unchanged.
func gcraAll(now int64, tats []int64, limits []Limit, cost int) (Decision, bool) {
	var best Decision
	newTATs := make([]int64, 0, 8)
	for i, l := range limits {
		d, nt := gcraStep(now, tats[i], l, cost)
		d.Limit = i
		if !d.Allowed {
			return d, false
		}
		if i == 0 || d.Remaining < best.Remaining {
			best = d
		}
		newTATs = append(newTATs, nt)
	}
	if cost > 0 {
		copy(tats, newTATs)
	}
	return best, cost > 0
}
