package policy

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// TestEnvAccessorsNeverNil checks that a unit can use every accessor of
// an empty or nil Env without checks, and gets what was set otherwise.
func TestEnvAccessorsNeverNil(t *testing.T) {
	for _, e := range []*Env{nil, {}} {
		if e.Log() == nil || e.Clock() == nil || e.StateStore() == nil || e.Telemetry() == nil || e.Realm() != DefaultRealm {
			t.Fatalf("Env %v: an accessor returned nil or the wrong default", e)
		}
		e.Log().Info("discarded")
		// Every method of the fallback metrics works, those that a nil
		// *Metrics would panic on too.
		e.Telemetry().Limit("r", "p", "closed").StoreError()
		e.Telemetry().DLPFinding("r", "d", "mask").Inc()
		e.Telemetry().Denied("r", "p", "c")
		if e.StateStore() == e.StateStore() {
			t.Error("StateStore without Store returned one shared store; each call must get its own")
		}
		if err := e.StateStore().Set(context.Background(), "k", []byte("v"), time.Minute); err != nil {
			t.Errorf("fallback store: %v", err)
		}
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	log := slog.New(slog.DiscardHandler)
	st := store.NewMemory(nil)
	m := telemetry.NewMetrics()
	e := &Env{Route: Route{Name: "r", Realm: "api"}, Logger: log, Now: func() time.Time { return at }, Store: st, Metrics: m}
	if e.Log() != log || !e.Clock()().Equal(at) || e.StateStore() != st || e.Telemetry() != m || e.Realm() != "api" || e.RouteName() != "r" {
		t.Error("an accessor did not return what the Env holds")
	}
}
