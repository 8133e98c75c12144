package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var _ Store = (*File)(nil)

// lockTimeout is how long OpenFile waits for another process to release
// the database before failing: long enough for a restart's old process to
// exit, short enough that a second gateway on the same file fails fast.
const lockTimeout = 500 * time.Millisecond

var (
	kvBucket   = []byte("kv")
	gcraBucket = []byte("gcra")
)

// File is a Store kept in one bbolt database file, for a single node whose
// counters, rate-limit buckets and revocations must survive a restart.
// Every write is one fsync'd transaction. Values carry their expiry, taken
// from the clock given to OpenFile; expired keys read as absent and are
// deleted by a bounded sweep that every write advances a little.
// Publish and Subscribe reach subscribers in this process only.
type File struct {
	db     *bolt.DB
	now    func() time.Time
	hub    *hub
	closed atomic.Bool

	// Where the sweep resumes in each bucket; only touched inside write
	// transactions, which bbolt runs one at a time.
	sweepKV, sweepGCRA []byte
}

// OpenFile opens (creating it and its buckets when missing) the database
// at path. now is the clock (nil: time.Now). A file another process holds
// open fails after a short wait with an error saying so.
func OpenFile(path string, now func() time.Time) (*File, error) {
	if now == nil {
		now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is in use by another process (is another gateway running with this state file?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{kvBucket, gcraBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: initialising %s: %w", path, err)
	}
	return &File{db: db, now: now, hub: newHub()}, nil
}

// Path returns the database file's path.
func (f *File) Path() string { return f.db.Path() }

// A kv value is the expiry (unix ns, big endian, 0: none) then the bytes.
func encodeKV(exp int64, value []byte) []byte {
	b := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(exp))
	copy(b[8:], value)
	return b
}

func decodeKV(b []byte) (exp int64, value []byte) {
	if len(b) < 8 {
		return 1, nil // corrupt: treat as long expired
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:]
}

func liveAt(exp, now int64) bool { return exp == 0 || exp > now }

func (f *File) view(fn func(tx *bolt.Tx) error) error {
	if f.closed.Load() {
		return ErrClosed
	}
	return f.mapErr(f.db.View(fn))
}

func (f *File) update(fn func(tx *bolt.Tx) error) error {
	if f.closed.Load() {
		return ErrClosed
	}
	return f.mapErr(f.db.Update(fn))
}

func (f *File) mapErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// sweep deletes expired keys among the next few after where the last
// sweep stopped, wrapping around, so that every key is examined in turn.
func (f *File) sweep(tx *bolt.Tx, now int64) {
	f.sweepKV = sweepBucket(tx.Bucket(kvBucket), f.sweepKV, func(v []byte) bool {
		exp, _ := decodeKV(v)
		return !liveAt(exp, now)
	})
	f.sweepGCRA = sweepBucket(tx.Bucket(gcraBucket), f.sweepGCRA, func(v []byte) bool {
		return bucketsEmpty(now, decodeTATs(v))
	})
}

func sweepBucket(b *bolt.Bucket, from []byte, expired func(v []byte) bool) []byte {
	c := b.Cursor()
	k, v := c.Seek(from)
	var dead [][]byte
	for range sweepSample {
		if k == nil {
			break
		}
		if expired(v) {
			dead = append(dead, bytes.Clone(k))
		}
		k, v = c.Next()
	}
	for _, d := range dead {
		_ = b.Delete(d) // only fails in a read-only transaction
	}
	return bytes.Clone(k) // nil: start over next time
}

func decodeTATs(b []byte) []int64 {
	tats := make([]int64, len(b)/8)
	for i := range tats {
		tats[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
	}
	return tats
}

func encodeTATs(tats []int64) []byte {
	b := make([]byte, 8*len(tats))
	for i, t := range tats {
		binary.BigEndian.PutUint64(b[8*i:], uint64(t))
	}
	return b
}

// Get implements Store.
func (f *File) Get(_ context.Context, key string) ([]byte, error) {
	var out []byte
	err := f.view(func(tx *bolt.Tx) error {
		exp, v := decodeKV(tx.Bucket(kvBucket).Get([]byte(key)))
		if v == nil || !liveAt(exp, f.now().UnixNano()) {
			return ErrNotFound
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Set implements Store.
func (f *File) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	return f.update(func(tx *bolt.Tx) error {
		now := f.now().UnixNano()
		f.sweep(tx, now)
		return tx.Bucket(kvBucket).Put([]byte(key), encodeKV(expiryOf(now, ttl), value))
	})
}

// SetNX implements Store.
func (f *File) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	var stored bool
	err := f.update(func(tx *bolt.Tx) error {
		now := f.now().UnixNano()
		b := tx.Bucket(kvBucket)
		stored = false
		if exp, v := decodeKV(b.Get([]byte(key))); v != nil && liveAt(exp, now) {
			return nil
		}
		f.sweep(tx, now)
		stored = true
		return b.Put([]byte(key), encodeKV(expiryOf(now, ttl), value))
	})
	return stored, err
}

// Delete implements Store.
func (f *File) Delete(_ context.Context, key string) error {
	return f.update(func(tx *bolt.Tx) error {
		return tx.Bucket(kvBucket).Delete([]byte(key))
	})
}

// IncrBy implements Store. Counters are kept as decimal text, so Get and
// Scan return them as Redis does.
func (f *File) IncrBy(_ context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	var out int64
	err := f.update(func(tx *bolt.Tx) error {
		now := f.now().UnixNano()
		b := tx.Bucket(kvBucket)
		exp, v := decodeKV(b.Get([]byte(key)))
		var cur int64
		if v == nil || !liveAt(exp, now) {
			exp = expiryOf(now, ttl)
		} else {
			var err error
			if cur, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return ErrNotInteger
			}
		}
		out = cur + n
		f.sweep(tx, now)
		return b.Put([]byte(key), encodeKV(exp, strconv.AppendInt(nil, out, 10)))
	})
	return out, err
}

// Allow implements Store. A refusal is decided in a read transaction, so
// that a client hammering a limit costs no disk writes; only a decision
// that consumes units writes (and decides again inside the write).
func (f *File) Allow(_ context.Context, key string, limits []Limit, cost int) (Decision, error) {
	if err := checkAllow(limits, cost); err != nil {
		return Decision{}, err
	}
	var d Decision
	var changed bool
	decide := func(tx *bolt.Tx) []int64 {
		tats := decodeTATs(tx.Bucket(gcraBucket).Get([]byte(key)))
		if len(tats) < len(limits) {
			tats = append(tats, make([]int64, len(limits)-len(tats))...)
		}
		d, changed = gcraAll(f.now().UnixNano(), tats, limits, cost)
		return tats
	}
	err := f.view(func(tx *bolt.Tx) error {
		decide(tx)
		return nil
	})
	if err != nil || !changed {
		return d, err
	}
	err = f.update(func(tx *bolt.Tx) error {
		tats := decide(tx)
		if !changed {
			return nil
		}
		f.sweep(tx, f.now().UnixNano())
		return tx.Bucket(gcraBucket).Put([]byte(key), encodeTATs(tats))
	})
	return d, err
}

// Scan implements Store. It reads in a snapshot, then calls fn outside the
// transaction, so fn may write to the store.
func (f *File) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	type kv struct {
		k string
		v []byte
	}
	var all []kv
	err := f.view(func(tx *bolt.Tx) error {
		now := f.now().UnixNano()
		c := tx.Bucket(kvBucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if exp, val := decodeKV(v); liveAt(exp, now) {
				all = append(all, kv{string(k), bytes.Clone(val)})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(e.k, e.v) {
			break
		}
	}
	return nil
}

// Publish implements Store: every subscriber in this process receives it.
func (f *File) Publish(_ context.Context, channel string, msg []byte) error {
	return f.hub.publish(channel, msg)
}

// Subscribe implements Store.
func (f *File) Subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	return f.hub.subscribe(ctx, channel)
}

// Close implements Store: it ends the subscriptions and closes the file,
// releasing its lock.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.hub.close()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("store: closing %s: %w", f.db.Path(), err)
	}
	return nil
}
