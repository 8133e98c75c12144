package store

import (
	"context"
	"sync"
)

// maxPending is how many messages a slow in-process subscriber may have
// waiting before they are dropped and it is sent the resync signal.
const maxPending = 1024

// hub is the in-process Publish/Subscribe of the memory and file stores.
// Publish never blocks on a subscriber: each has its own queue and a
// goroutine that hands messages over, which ends with the subscription.
type hub struct {
	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{}
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// subscriber is one subscription's queue: messages wait here, never
// blocking the publisher; past maxPending they are dropped and the
// subscriber is owed the resync signal (nil).
type subscriber struct {
	mu      sync.Mutex
	pending [][]byte
	lost    bool
	wake    chan struct{}
}

func newSubscriber() *subscriber { return &subscriber{wake: make(chan struct{}, 1)} }

// push queues m; nil queues the resync signal.
func (s *subscriber) push(m []byte) {
	s.mu.Lock()
	if m == nil || len(s.pending) >= maxPending {
		s.pending, s.lost = s.pending[:0], true
	}
	if m != nil {
		s.pending = append(s.pending, m)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// forward hands queued messages to out until ctx or done ends.
func (s *subscriber) forward(ctx context.Context, done <-chan struct{}, out chan<- []byte) {
	for {
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		case <-done:
			return
		}
		s.mu.Lock()
		batch, lost := s.pending, s.lost
		s.pending, s.lost = nil, false
		s.mu.Unlock()
		if lost {
			batch = append([][]byte{nil}, batch...)
		}
		for _, m := range batch {
			select {
			case out <- m:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}
}

func newHub() *hub {
	return &hub{subs: make(map[string]map[*subscriber]struct{}), done: make(chan struct{})}
}

func (h *hub) publish(channel string, msg []byte) error {
	m := append(make([]byte, 0, len(msg)), msg...) // never nil: nil is the resync signal
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	for s := range h.subs[channel] {
		s.push(m)
	}
	return nil
}

func (h *hub) subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	s := newSubscriber()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if h.subs[channel] == nil {
		h.subs[channel] = make(map[*subscriber]struct{})
	}
	h.subs[channel][s] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()

	out := make(chan []byte)
	go func() {
		defer h.wg.Done()
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs[channel], s)
			if len(h.subs[channel]) == 0 {
				delete(h.subs, channel)
			}
			h.mu.Unlock()
		}()
		s.forward(ctx, h.done, out)
	}()
	return out, nil
}

// close ends every subscription and waits for their goroutines.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()
	h.wg.Wait()
}
