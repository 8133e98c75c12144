package limitkey

import (
	"log/slog"
	"sync/atomic"
	"time"

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

// Health tracks whether a limit policy can reach its store. It logs the
// first failure and the recovery, not every request; keeps the policy's
// degraded gauge and error counter; and, while the store is down, lets
// only one attempt per Retry through, so that a store that hangs (rather
// than refuses connections) does not add its timeout to every request.
// Recovery is automatic: the first attempt that succeeds ends the
// degraded state. Safe for concurrent use.
type Health struct {
	Log     *slog.Logger
	Metrics telemetry.LimitMetrics
	Mode    string
	Now     func() time.Time
	// Retry is the pause between attempts while down; 0: DefaultRetry.
	Retry time.Duration

	down    atomic.Bool
	retryAt atomic.Int64 // unix ns before which the store is not tried
}

// Skip reports whether the store should not be tried now (it is down and
// the pause since the last attempt has not passed). It claims the next
// attempt for the caller when the pause has passed.
func (h *Health) Skip() bool {
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
	if !h.down.Swap(true) {
		h.Metrics.Degraded(true)
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

// Down reports whether the store is considered unreachable.
func (h *Health) Down() bool { return h.down.Load() }
