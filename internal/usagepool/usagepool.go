// Package usagepool shares values that are costly to build or to run twice
// (a key set and its refresher, a connection pool) between the users that
// name them by the same key: several routes of one config, and the old and
// the new config during a reload.
//
// A value is built by the first Acquire of its key, handed to every later
// Acquire of that key, and closed when the last user releases it. Because a
// reload builds the new config before it closes the old one, a value both
// use survives the reload without being rebuilt.
package usagepool

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Pool holds reference-counted values by key. The zero Pool is ready to
// use; a Pool must not be copied after first use. It is safe for
// concurrent use.
//
// A nil *Pool shares nothing: every Acquire builds a value of its own and
// its release closes it.
type Pool struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	ready chan struct{} // closed once v and err are set
	v     io.Closer
	err   error
	refs  int
}

// New returns an empty pool.
func New() *Pool { return &Pool{} }

// Acquire returns the value of key in p, building it with build when p holds
// none, together with the function that releases it. release must be called
// exactly once when the caller is done with the value (later calls do
// nothing); the value is closed, and its error returned, by the release
// that drops its last user.
//
// build runs without p locked (it may acquire other keys); concurrent
// Acquires of a key being built wait for it. A build that fails is not
// kept: its error goes to the callers waiting for it, and the next Acquire
// tries again. Key spaces of different value types must not overlap: a
// value of another type under key is an error.
func Acquire[V io.Closer](p *Pool, key string, build func() (V, error)) (V, func() error, error) {
	var zero V
	if p == nil {
		v, err := build()
		if err != nil {
			return zero, nil, err
		}
		return v, onceFunc(v.Close), nil
	}
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[string]*entry)
	}
	e, ok := p.m[key]
	if !ok {
		e = &entry{ready: make(chan struct{}), refs: 1}
		p.m[key] = e
		p.mu.Unlock()
		v, err := build()
		p.mu.Lock()
		if err != nil {
			e.err = err
			delete(p.m, key)
		} else {
			e.v = v
		}
		close(e.ready)
		p.mu.Unlock()
		if err != nil {
			return zero, nil, err
		}
		return v, p.releaser(key, e), nil
	}
	e.refs++
	p.mu.Unlock()
	<-e.ready
	if e.err != nil {
		// The build this caller waited for failed; its error is the answer
		// for everyone who asked at the same time.
		return zero, nil, e.err
	}
	v, ok := e.v.(V)
	if !ok {
		p.releaser(key, e)()
		return zero, nil, fmt.Errorf("usagepool: key %q holds a %T, not a %T", key, e.v, zero)
	}
	return v, p.releaser(key, e), nil
}

// releaser returns the release function of one use of e.
func (p *Pool) releaser(key string, e *entry) func() error {
	return onceFunc(func() error {
		p.mu.Lock()
		e.refs--
		last := e.refs == 0
		if last && p.m[key] == e {
			delete(p.m, key)
		}
		p.mu.Unlock()
		if last && e.v != nil {
			return e.v.Close()
		}
		return nil
	})
}

// Each calls f with the key and value of every built value of type V in
// p whose key has the given prefix, in no particular order. It works on a
// snapshot taken under the lock and calls f without it, so f may use the
// pool; a value released meanwhile may be closed while f holds it, so
// values must tolerate use after Close (an error, not a crash). Each is
// for acting on every shared value at once, as an operator's "refresh the
// key sets now" does.
func Each[V any](p *Pool, prefix string, f func(key string, v V)) {
	if p == nil {
		return
	}
	type kv struct {
		key string
		v   V
	}
	var snap []kv
	p.mu.Lock()
	for k, e := range p.m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		select {
		case <-e.ready:
		default:
			continue // being built: not there yet
		}
		if v, ok := e.v.(V); ok && e.err == nil {
			snap = append(snap, kv{k, v})
		}
	}
	p.mu.Unlock()
	for _, x := range snap {
		f(x.key, x.v)
	}
}

// Len returns the number of values p holds (being built included).
func (p *Pool) Len() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// Refs returns the number of users of key's value; 0 when p holds none.
func (p *Pool) Refs(key string) int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.m[key]; ok {
		return e.refs
	}
	return 0
}

func onceFunc(f func() error) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { err = f() })
		return err
	}
}
