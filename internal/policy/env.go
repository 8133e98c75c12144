package policy

import (
	"log/slog"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The accessors below never return nil, so a factory uses what it is given
// without checking: the gateway fills every field, a test may fill none, and
// both paths run the same code. They are safe on a nil *Env.

// discard is the logger of an Env without one.
var discard = slog.New(slog.DiscardHandler)

// Log returns the Logger, or a logger that discards everything.
func (e *Env) Log() *slog.Logger {
	if e == nil || e.Logger == nil {
		return discard
	}
	return e.Logger
}

// Clock returns Now, or time.Now.
func (e *Env) Clock() func() time.Time {
	if e == nil || e.Now == nil {
		return time.Now
	}
	return e.Now
}

// StateStore returns Store, or else a new process-local memory store on
// Clock; each call without a Store returns a different one, so a factory
// calls it once. State in such a store is not shared with other replicas
// or other policies, which is right for tests and single-node use only.
func (e *Env) StateStore() store.Store {
	if e == nil || e.Store == nil {
		return store.NewMemory(e.Clock())
	}
	return e.Store
}

// Telemetry returns Metrics, or else telemetry.Discard(): metrics that
// record into a registry nothing serves. Every method of the result works.
func (e *Env) Telemetry() *telemetry.Metrics {
	if e == nil || e.Metrics == nil {
		return telemetry.Discard()
	}
	return e.Metrics
}

// RouteName returns the name of the route the unit is built for ("" on a
// nil Env).
func (e *Env) RouteName() string {
	if e == nil {
		return ""
	}
	return e.Route.Name
}

// Realm returns the realm the route's challenges name
// (Route.ChallengeRealm); DefaultRealm on a nil Env.
func (e *Env) Realm() string {
	if e == nil {
		return DefaultRealm
	}
	return e.Route.ChallengeRealm()
}
