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

// sweepSample is how many entries a write examines for expiry: more than
// one, so that the sweep outpaces the writes that create entries, and
// bounded, so that no operation does unbounded work.
const sweepSample = 8

// Memory is a Store in this process's memory, lost on restart. Expiry
// follows the clock given to NewMemory. Expired entries are dropped when
// touched, and every write examines the next few entries of its shard in
// turn (a round-robin sweep: every entry is examined once per
// entries/sweepSample writes), so garbage stays bounded without a
// background goroutine (subscriptions have one each, ended by their
// context or Close).
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memShards]memShard
	hub    *hub
	closed atomic.Bool
	// sweepAt picks the shard the next write sweeps besides its own, so
	// that shards nobody writes to are swept too.
	sweepAt atomic.Uint32
}

type memShard struct {
	mu      sync.Mutex
	kv      map[string]*memEntry
	buckets map[string]*memBucket
	// kvKeys and bucketKeys list the maps' keys for the sweep, which
	// resumes at the cursors; an entry's idx is its place in the list.
	kvKeys, bucketKeys     []string
	kvCursor, bucketCursor int
}

// memEntry is a value or a counter (isInt, n) with its expiry (unix ns,
// 0: none).
type memEntry struct {
	val   []byte
	n     int64
	isInt bool
	exp   int64
	idx   int
}

// memBucket is Allow's TATs (ns) by limit index.
type memBucket struct {
	tats []int64
	idx  int
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
		m.shards[i].kv = make(map[string]*memEntry)
		m.shards[i].buckets = make(map[string]*memBucket)
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

// sweep examines the next sweepSample entries of each map, deleting the
// expired ones; callers hold mu.
func (s *memShard) sweep(now int64) {
	for n := 0; n < sweepSample && len(s.kvKeys) > 0; n++ {
		if s.kvCursor >= len(s.kvKeys) {
			s.kvCursor = 0
		}
		k := s.kvKeys[s.kvCursor]
		if e := s.kv[k]; e.live(now) {
			s.kvCursor++
		} else {
			s.deleteKV(k, e) // moves another key to the cursor
		}
	}
	for n := 0; n < sweepSample && len(s.bucketKeys) > 0; n++ {
		if s.bucketCursor >= len(s.bucketKeys) {
			s.bucketCursor = 0
		}
		k := s.bucketKeys[s.bucketCursor]
		if b := s.buckets[k]; !bucketsEmpty(now, b.tats) {
			s.bucketCursor++
		} else {
			s.bucketKeys = removeAt(s.bucketKeys, b.idx, func(moved string) { s.buckets[moved].idx = b.idx })
			delete(s.buckets, k)
		}
	}
}

// sweepNext sweeps the next shard in turn, unless it is busy (then the
// next write will).
func (m *Memory) sweepNext(now int64) {
	s := &m.shards[m.sweepAt.Add(1)%memShards]
	if s.mu.TryLock() {
		s.sweep(now)
		s.mu.Unlock()
	}
}

// removeAt removes keys[i] by moving the last key into its place, telling
// moved about it.
func removeAt(keys []string, i int, moved func(string)) []string {
	last := len(keys) - 1
	if i != last {
		keys[i] = keys[last]
		moved(keys[i])
	}
	keys[last] = ""
	return keys[:last]
}

func (s *memShard) deleteKV(k string, e *memEntry) {
	s.kvKeys = removeAt(s.kvKeys, e.idx, func(moved string) { s.kv[moved].idx = e.idx })
	delete(s.kv, k)
}

// putKV stores e under k, keeping its place in the sweep's list.
func (s *memShard) putKV(k string, e *memEntry) {
	if old, ok := s.kv[k]; ok {
		e.idx = old.idx
	} else {
		e.idx = len(s.kvKeys)
		s.kvKeys = append(s.kvKeys, k)
	}
	s.kv[k] = e
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
		s.deleteKV(key, e)
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
	defer m.sweepNext(now) // after the unlock: defers run last first
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putKV(key, &memEntry{val: append([]byte(nil), value...), exp: expiryOf(now, ttl)})
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
	defer m.sweepNext(now) // after the unlock: defers run last first
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.kv[key]; ok && e.live(now) {
		return false, nil
	}
	s.putKV(key, &memEntry{val: append([]byte(nil), value...), exp: expiryOf(now, ttl)})
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
	if e, ok := s.kv[key]; ok {
		s.deleteKV(key, e)
	}
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
	defer m.sweepNext(now) // after the unlock: defers run last first
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kv[key]
	switch {
	case !ok || !e.live(now):
		e = &memEntry{isInt: true, exp: expiryOf(now, ttl)}
		s.putKV(key, e)
	case !e.isInt:
		v, err := strconv.ParseInt(string(e.val), 10, 64)
		if err != nil {
			return 0, ErrNotInteger
		}
		e.val, e.isInt, e.n = nil, true, v
	}
	e.n += n
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
	defer m.sweepNext(now) // after the unlock: defers run last first
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	var tats []int64
	if b != nil {
		tats = b.tats
	}
	if len(tats) < len(limits) {
		tats = append(tats, make([]int64, len(limits)-len(tats))...)
	}
	d, changed := gcraAll(now, tats, limits, cost)
	if changed {
		if b == nil {
			b = &memBucket{idx: len(s.bucketKeys)}
			s.bucketKeys = append(s.bucketKeys, key)
			s.buckets[key] = b
		}
		b.tats = tats
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
			if e.live(now) && strings.HasPrefix(k, prefix) {
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
		s.kv, s.buckets, s.kvKeys, s.bucketKeys = nil, nil, nil, nil
		s.mu.Unlock()
	}
	return nil
}
