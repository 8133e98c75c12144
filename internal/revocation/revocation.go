// Package revocation holds the token identifiers (JWT `jti`) revoked before
// their expiry, so that authenticators that cache verified tokens can still
// refuse one at once.
//
// Entries are kept only until the revoked token's own expiry (after which
// the token is refused anyway), so the list stays as small as the set of
// revoked tokens still alive.
package revocation

import (
	"sync"
	"time"
)

// List is a set of revoked token ids, each with the time until which it
// must be refused. It is safe for concurrent use; Revoked is a read-locked
// map lookup, cheap enough to call on every request.
//
// A nil *List holds nothing: Revoked reports false.
type List struct {
	now func() time.Time

	mu sync.RWMutex
	m  map[string]time.Time
	// purgeAt is the size at which Revoke next sweeps out expired entries;
	// doubling it after each sweep keeps the cost amortised O(1).
	purgeAt int
}

// minPurge is the size below which expired entries are not swept (they are
// still ignored by Revoked).
const minPurge = 1024

// New returns an empty list reading the time from now (nil: time.Now).
func New(now func() time.Time) *List {
	if now == nil {
		now = time.Now
	}
	return &List{now: now, m: make(map[string]time.Time), purgeAt: minPurge}
}

// Revoke revokes the token with id jti until until (its exp). A later
// Revoke of the same id keeps the later of the two times. An empty jti, or
// an until already past, is ignored.
func (l *List) Revoke(jti string, until time.Time) {
	now := l.now()
	if jti == "" || !now.Before(until) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.m[jti]; ok && old.After(until) {
		return
	}
	l.m[jti] = until
	if len(l.m) >= l.purgeAt {
		l.purgeLocked(now)
		l.purgeAt = max(2*len(l.m), minPurge)
	}
}

// Revoked reports whether jti is revoked now.
func (l *List) Revoked(jti string) bool {
	if l == nil || jti == "" {
		return false
	}
	l.mu.RLock()
	until, ok := l.m[jti]
	l.mu.RUnlock()
	return ok && l.now().Before(until)
}

// Purge drops the entries whose expiry has passed.
func (l *List) Purge() {
	now := l.now()
	l.mu.Lock()
	l.purgeLocked(now)
	l.mu.Unlock()
}

func (l *List) purgeLocked(now time.Time) {
	for jti, until := range l.m {
		if !now.Before(until) {
			delete(l.m, jti)
		}
	}
}

// Len returns the number of entries held, expired ones not yet purged
// included.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}

// Entry is one revoked token id and until when it is refused.
type Entry struct {
	JTI   string    `json:"jti"`
	Until time.Time `json:"until"`
}

// Entries returns the ids revoked now, in no particular order (the admin
// API lists them). A nil l holds none.
func (l *List) Entries() []Entry {
	if l == nil {
		return nil
	}
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]Entry, 0, len(l.m))
	for jti, until := range l.m {
		if now.Before(until) {
			out = append(out, Entry{jti, until})
		}
	}
	return out
}
