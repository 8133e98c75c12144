package limitkey

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Failure modes of a limit policy whose store is unreachable.
const (
	// FailClosed refuses requests (503) while the store is down.
	FailClosed = "closed"
	// FailOpen admits requests unlimited while the store is down.
	FailOpen = "open"
	// FailLocal decides with an in-process limiter at a fraction of the
	// limit while the store is down.
	FailLocal = "local"
)

// DefaultRetry is how long a policy decides without its store after a
// failure to reach it before trying it again.
const DefaultRetry = time.Second

// Health tracks whether a limit policy decides with its store or in its
// failure mode. It logs the policy's first failure and its recovery, not
// every request, and keeps the policy's degraded gauge and error counter.
//
// Whether the store is reachable is not decided here but by the store
// itself when the gateway guards it (store.Guarded, one per store for all
// policies): Skip follows its state, which changes once per outage and
// back once a probe confirms recovery. Only for a store that is not
// guarded (a policy built on its own, in tests) does Health decide by
// itself, letting one attempt per Retry through while down and ending the
// degraded state at the first success. Safe for concurrent use.
type Health struct {
	Log     *slog.Logger
	Metrics telemetry.LimitMetrics
	Mode    string
	Now     func() time.Time
	// Retry is the pause between attempts while down, for a store that
	// is not guarded; 0: DefaultRetry.
	Retry time.Duration
	// Guard is the store's health, when the store is guarded (see
	// ForStore); nil: Health decides by itself.
	Guard *store.Guarded

	down    atomic.Bool
	retryAt atomic.Int64 // unix ns before which the store is not tried
}

// Skip reports whether the store should not be tried now (it is down and
// the pause since the last attempt has not passed). It claims the next
// attempt for the caller when the pause has passed.
func (h *Health) Skip() bool {
	if h.Guard != nil {
		if h.Guard.Up() {
			return false
		}
		h.enterDegraded(nil)
		return true
	}
	if !h.down.Load() {
		return false
	}
	now := h.Now().UnixNano()
	at := h.retryAt.Load()
	if now < at {
		return true
	}
	// One caller wins the attempt; the others keep skipping.
	return !h.retryAt.CompareAndSwap(at, now+int64(h.retry()))
}

func (h *Health) retry() time.Duration {
	if h.Retry > 0 {
		return h.Retry
	}
	return DefaultRetry
}

// Failed records a failure to reach the store; the caller then decides
// in its failure mode (and calls Degraded).
func (h *Health) Failed(err error) {
	h.retryAt.Store(h.Now().UnixNano() + int64(h.retry()))
	h.enterDegraded(err)
}

func (h *Health) enterDegraded(err error) {
	if !h.down.Load() && !h.down.Swap(true) {
		h.Metrics.Degraded(true)
		if err == nil {
			err = errors.New("the store is down")
		}
		h.Log.Warn("limit store unreachable; deciding in failure mode until it is back", "on_store_error", h.Mode, "error", err)
	}
}

// Degraded counts one decision taken in the failure mode.
func (h *Health) Degraded() { h.Metrics.StoreError() }

// OK records a successful store call, ending a degraded state.
func (h *Health) OK() {
	if h.down.Load() && h.down.Swap(false) {
		h.Metrics.Degraded(false)
		h.Log.Info("limit store reachable again; limits are shared again", "on_store_error", h.Mode)
	}
}

// Down reports whether the policy decides in its failure mode.
func (h *Health) Down() bool { return h.down.Load() }

// ForStore returns the guard of st when the gateway guards it, for
// Health.Guard; nil otherwise.
func ForStore(st store.Store) *store.Guarded {
	g, _ := st.(*store.Guarded)
	return g
}
