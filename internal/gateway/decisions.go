package gateway

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// decisionRing keeps the decisions of the most recent requests for
// `gatehouse explain` and the console. It is a preallocated array of
// fixed-size records written in turn: recording copies a request's fields
// and timings into the next slot under that slot's own lock (uncontended
// unless the ring wraps within one request), so the request path
// allocates nothing. Strings are shared, not copied: route and policy
// names live as long as the config, the request id and path as long as
// the record.
type decisionRing struct {
	next  atomic.Uint64
	slots []decisionSlot
}

type decisionSlot struct {
	mu sync.Mutex
	decisionRecord
}

type decisionRecord struct {
	used                        bool
	requestID                   string
	time                        time.Time
	method, host, path          string
	route                       string
	clientIP                    netip.Addr
	principal, consumer         string
	decision, code, denier, msg string
	status                      int
	duration                    time.Duration
	cause                       error
	nTimings                    int
	timings                     [16]policy.Timing
}

func newDecisionRing(n int) *decisionRing {
	if n <= 0 {
		n = 10000
	}
	return &decisionRing{slots: make([]decisionSlot, n)}
}

// noDecisions is the ring of a gateway without an admin listener, which
// nothing could read: it keeps nothing (the full ring is some 9 MiB of live
// heap, twice that resident at the default GC target).
func noDecisions() *decisionRing { return &decisionRing{} }

// add records x's outcome.
func (d *decisionRing) add(x *exchange, status int, dur time.Duration) {
	if len(d.slots) == 0 {
		return
	}
	i := (d.next.Add(1) - 1) % uint64(len(d.slots))
	s := &d.slots[i]
	s.mu.Lock()
	fillRecord(&s.decisionRecord, x, status, dur)
	s.mu.Unlock()
}

func fillRecord(rec *decisionRecord, x *exchange, status int, dur time.Duration) {
	rec.used = true
	rec.requestID = x.RequestID
	rec.time = x.Start
	r := x.Request
	rec.method, rec.host, rec.path = r.Method, r.Host, r.URL.Path
	rec.route = ""
	if x.route != nil {
		rec.route = x.route.info.Name
	}
	rec.clientIP = x.ClientIP
	rec.principal, rec.consumer = "", ""
	if p := x.Principal; p != nil {
		rec.principal, rec.consumer = p.Subject, p.Consumer
		if rec.consumer == "" {
			rec.consumer = p.ClientID
		}
	}
	rec.decision, rec.code, rec.denier, rec.msg = x.decision, x.code, x.denier, x.detail
	rec.status, rec.duration, rec.cause = status, dur, x.cause
	rec.nTimings = copy(rec.timings[:], x.Timings)
}

// each calls f on the held records, newest first, until f returns false.
// f runs under the slot's lock and must not keep rec.
func (d *decisionRing) each(f func(rec *decisionRecord) bool) {
	n := d.next.Load()
	size := uint64(len(d.slots))
	for k := uint64(0); k < min(n, size); k++ {
		s := &d.slots[(n-1-k)%size]
		s.mu.Lock()
		ok := !s.used || f(&s.decisionRecord)
		s.mu.Unlock()
		if !ok {
			return
		}
	}
}

// find returns the newest decision of request id.
func (d *decisionRing) find(id string) (admin.Decision, bool) {
	var out admin.Decision
	found := false
	d.each(func(rec *decisionRecord) bool {
		if rec.requestID != id {
			return true
		}
		out, found = rec.view(), true
		return false
	})
	return out, found
}

func (rec *decisionRecord) view() admin.Decision {
	d := admin.Decision{
		RequestID: rec.requestID, Time: rec.time.UTC(), Method: rec.method, Host: rec.host, Path: rec.path,
		Route: rec.route, Principal: rec.principal, Consumer: rec.consumer,
		Decision: rec.decision, Status: rec.status, Code: rec.code, Policy: rec.denier, Detail: rec.msg,
		DurationMS: ms(rec.duration), Source: "memory", Policies: make([]admin.PolicyVerdict, 0, rec.nTimings),
	}
	if rec.clientIP.IsValid() {
		d.ClientIP = rec.clientIP.String()
	}
	if rec.cause != nil {
		d.Cause = rec.cause.Error()
	}
	for _, t := range rec.timings[:rec.nTimings] {
		d.Policies = append(d.Policies, admin.PolicyVerdict{Policy: t.Policy, Verdict: t.Verdict, DurationMS: ms(t.Duration)})
	}
	return d
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// consumerCounts aggregates the held decisions per consumer.
func (d *decisionRing) consumerCounts() map[string]*admin.Consumer {
	out := map[string]*admin.Consumer{}
	d.each(func(rec *decisionRecord) bool {
		name := rec.consumer
		if name == "" {
			name = rec.principal
		}
		if name == "" {
			return true
		}
		c := out[name]
		if c == nil {
			c = &admin.Consumer{Name: name}
			out[name] = c
		}
		c.Requests++
		if rec.decision == "deny" {
			c.Denied++
			if rec.code == "rate_limited" {
				c.RateLimited++
			}
		}
		return true
	})
	return out
}

// statWindow is how many seconds of traffic the stats keep.
const statWindow = 120

// stats counts requests, denials and errors per second over the last
// statWindow seconds, and denials per code. Counting a request is a few
// atomic operations; a denial also takes a mutex (denials are the slow
// path already).
type stats struct {
	now     func() time.Time
	buckets [statWindow]statBucket
	total   atomic.Int64
	denied  atomic.Int64

	mu     sync.Mutex
	byCode map[string]*codeSeries
}

type statBucket struct {
	mu                    sync.Mutex // taken only to reset for a new second
	sec                   atomic.Int64
	requests, den, errors atomic.Int64
}

type codeSeries struct {
	total int64
	sec   [statWindow]int64
	n     [statWindow]int64
}

func newStats(now func() time.Time) *stats {
	return &stats{now: now, byCode: map[string]*codeSeries{}}
}

func (s *stats) bucket(sec int64) *statBucket {
	b := &s.buckets[sec%statWindow]
	if b.sec.Load() != sec {
		b.mu.Lock()
		if b.sec.Load() != sec {
			b.requests.Store(0)
			b.den.Store(0)
			b.errors.Store(0)
			b.sec.Store(sec)
		}
		b.mu.Unlock()
	}
	return b
}

func (s *stats) add(decision, code string, at time.Time) {
	sec := at.Unix()
	b := s.bucket(sec)
	b.requests.Add(1)
	s.total.Add(1)
	switch decision {
	case "deny":
		b.den.Add(1)
		s.denied.Add(1)
		s.mu.Lock()
		cs := s.byCode[code]
		if cs == nil {
			cs = &codeSeries{}
			s.byCode[code] = cs
		}
		cs.total++
		i := sec % statWindow
		if cs.sec[i] != sec {
			cs.sec[i], cs.n[i] = sec, 0
		}
		cs.n[i]++
		s.mu.Unlock()
	case "error":
		b.errors.Add(1)
	}
}

// view returns the last statWindow seconds, oldest first, ending at the
// last complete second.
func (s *stats) view() admin.Stats {
	now := s.now()
	end := now.Unix() - 1
	start := end - statWindow + 1
	v := admin.Stats{Now: now.UTC(), Interval: 1, DenialsByCode: map[string][]int64{}, TotalByCode: map[string]int64{},
		TotalRequests: s.total.Load(), TotalDenied: s.denied.Load()}
	for sec := start; sec <= end; sec++ {
		b := &s.buckets[((sec%statWindow)+statWindow)%statWindow]
		var r, d, e int64
		if b.sec.Load() == sec {
			r, d, e = b.requests.Load(), b.den.Load(), b.errors.Load()
		}
		v.Times = append(v.Times, sec)
		v.Requests = append(v.Requests, r)
		v.Denied = append(v.Denied, d)
		v.Errors = append(v.Errors, e)
	}
	s.mu.Lock()
	codes := make([]string, 0, len(s.byCode))
	for c := range s.byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		cs := s.byCode[c]
		v.TotalByCode[c] = cs.total
		series := make([]int64, 0, statWindow)
		any := false
		for sec := start; sec <= end; sec++ {
			i := ((sec % statWindow) + statWindow) % statWindow
			n := int64(0)
			if cs.sec[i] == sec {
				n = cs.n[i]
			}
			any = any || n > 0
			series = append(series, n)
		}
		if any {
			v.DenialsByCode[c] = series
		}
	}
	s.mu.Unlock()
	return v
}
