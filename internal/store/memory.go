package store

import (
	"context"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var _ Store = (*Memory)(nil)

// memShards spreads keys over independent locks so that concurrent
// requests for different keys do not contend.
const memShards = 64

// sweepSample is how many entries a write examines for expiry: enough to
// keep up with keys expiring at the rate they are written, bounded so that
// no operation does unbounded work (Redis's active expiry does the same).
const sweepSample = 8

// Memory is a Store in this process's memory, lost on restart. Expiry
// follows the clock given to NewMemory. Expired entries are dropped when
// touched and by a bounded sample on every write; there is no background
// goroutine (subscriptions have one each, ended by their context or Close).
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memShards]memShard
	hub    *hub
	closed atomic.Bool
}

type memShard struct {
	mu      sync.Mutex
	kv      map[string]memEntry
	buckets map[string][]int64 // Allow's TATs by limit index, in ns
}

// memEntry is a value or a counter (isInt, n) with its expiry (unix ns,
// 0: none).
type memEntry struct {
	val   []byte
	n     int64
	isInt bool
	exp   int64
}

func (e *memEntry) live(now int64) bool { return e.exp == 0 || e.exp > now }

func (e *memEntry) bytes() []byte {
	if e.isInt {
		return strconv.AppendInt(nil, e.n, 10)
	}
	return append([]byte(nil), e.val...)
}

// NewMemory returns an empty memory store. now is the clock (nil:
// time.Now); tests pass a fake one to drive expiry and GCRA.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, seed: maphash.MakeSeed(), hub: newHub()}
	for i := range m.shards {
		m.shards[i].kv = make(map[string]memEntry)
		m.shards[i].buckets = make(map[string][]int64)
	}
	return m
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%memShards]
}

func expiryOf(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + int64(ttl)
}

// sweep drops expired entries among a few of the shard's; callers hold mu.
// Go's map iteration starts at a random place, which makes it a sample.
func (s *memShard) sweep(now int64) {
	n := 0
	for k, e := range s.kv {
		if !e.live(now) {
			delete(s.kv, k)
		}
		if n++; n == sweepSample {
			break
		}
	}
	n = 0
	for k, tats := range s.buckets {
		if bucketsEmpty(now, tats) {
			delete(s.buckets, k)
		}
		if n++; n == sweepSample {
			break
		}
	}
}

// bucketsEmpty reports whether every TAT is in the past: such buckets are
// full, the same as absent.
func bucketsEmpty(now int64, tats []int64) bool {
	for _, t := range tats {
		if t > now {
			return false
		}
	}
	return true
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kv[key]
	if !ok {
		return nil, ErrNotFound
	}
	if !e.live(now) {
		delete(s.kv, key)
		return nil, ErrNotFound
	}
	return e.bytes(), nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if m.closed.Load() {
		return ErrClosed
	}
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[key] = memEntry{val: append([]byte(nil), value...), exp: expiryOf(now, ttl)}
	s.sweep(now)
	return nil
}

// SetNX implements Store.
func (m *Memory) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if m.closed.Load() {
		return false, ErrClosed
	}
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.kv[key]; ok && e.live(now) {
		return false, nil
	}
	s.kv[key] = memEntry{val: append([]byte(nil), value...), exp: expiryOf(now, ttl)}
	s.sweep(now)
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	s := m.shard(key)
	s.mu.Lock()
	delete(s.kv, key)
	s.mu.Unlock()
	return nil
}

// IncrBy implements Store.
func (m *Memory) IncrBy(_ context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kv[key]
	if !ok || !e.live(now) {
		e = memEntry{isInt: true, exp: expiryOf(now, ttl)}
	} else if !e.isInt {
		v, err := strconv.ParseInt(string(e.val), 10, 64)
		if err != nil {
			return 0, ErrNotInteger
		}
		e = memEntry{isInt: true, n: v, exp: e.exp}
	}
	e.n += n
	s.kv[key] = e
	s.sweep(now)
	return e.n, nil
}

// Allow implements Store.
func (m *Memory) Allow(_ context.Context, key string, limits []Limit, cost int) (Decision, error) {
	if m.closed.Load() {
		return Decision{}, ErrClosed
	}
	if err := checkAllow(limits, cost); err != nil {
		return Decision{}, err
	}
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	tats := s.buckets[key]
	if len(tats) < len(limits) {
		tats = append(tats, make([]int64, len(limits)-len(tats))...)
	}
	d, changed := gcraAll(now, tats, limits, cost)
	if changed {
		s.buckets[key] = tats
		s.sweep(now)
	}
	return d, nil
}

// Scan implements Store. It copies each shard's matching entries before
// calling fn, so fn may use the store.
func (m *Memory) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	type kv struct {
		k string
		v []byte
	}
	var batch []kv
	for i := range m.shards {
		if m.closed.Load() {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		now := m.now().UnixNano()
		s := &m.shards[i]
		batch = batch[:0]
		s.mu.Lock()
		for k, e := range s.kv {
			if !e.live(now) {
				delete(s.kv, k)
				continue
			}
			if strings.HasPrefix(k, prefix) {
				batch = append(batch, kv{k, e.bytes()})
			}
		}
		s.mu.Unlock()
		for _, e := range batch {
			if !fn(e.k, e.v) {
				return nil
			}
		}
	}
	return nil
}

// Publish implements Store: every subscriber in this process receives it.
func (m *Memory) Publish(_ context.Context, channel string, msg []byte) error {
	return m.hub.publish(channel, msg)
}

// Subscribe implements Store.
func (m *Memory) Subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	return m.hub.subscribe(ctx, channel)
}

// Close implements Store: it ends the subscriptions and drops the data.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.hub.close()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.kv, s.buckets = map[string]memEntry{}, map[string][]int64{}
		s.mu.Unlock()
	}
	return nil
}
