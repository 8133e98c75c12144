package policy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/registry"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// Env is what a factory may use to build a policy.
type Env struct {
	// Route is the route the policy is built for.
	Route Route
	// Logger logs with the route and policy attached.
	Logger *slog.Logger
	// Now is the clock. Never nil when built by the gateway.
	Now func() time.Time
	// TrustedProxies are the gateway-wide trusted proxy prefixes.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the one header trusted proxies name the client
	// address in (clientip.Source.Header), for a policy that resolves the
	// address again with proxies of its own. Empty: X-Forwarded-For.
	ClientIPHeader string
	// Store is the gateway's shared state (rate limits, quotas, replay
	// caches). Never nil when built by the gateway.
	Store store.Store
	// Pool shares resources (key sets and their refreshers) between the
	// policies of all routes and across reloads; it lives as long as the
	// gateway. Nil means no sharing: each user builds its own.
	Pool *usagepool.Pool
	// Metrics are the gateway's metrics, for policies that record their
	// own (key set fetches). Nil: record none.
	Metrics *telemetry.Metrics
	// Revocations are the token ids revoked before their expiry, checked
	// by authenticators on every request; they live as long as the
	// gateway. Nil: none are revoked.
	Revocations *revocation.List
	// Audit records security events (package audit); the gateway already
	// records every denial, so a policy records only what it alone knows.
	// Nil: discard (Record on a nil *audit.Log does nothing).
	Audit *audit.Log
}

// A Factory builds a policy from its raw config, in the steps of the unit
// lifecycle (CONTRIBUTING.md): decode strictly (cfg.Decode), validate (no
// I/O; every independent problem at once, config.Problems), provision
// (defaults, files, keys, compilation). Every problem is returned as a
// config error naming the file, the line and the field (cfg.Errorf), so a
// bad config fails at load time, never per request.
//
// The gateway may call a factory from several goroutines at once, for
// different specs (a large config is built on every core): what it
// shares with other builds (package state, env.Pool) must be safe for
// that.
type Factory func(cfg *config.Node, env *Env) (Policy, error)

// Unit is a named policy type.
type Unit = registry.Unit[Factory]

// Registry maps policy type names to their units. It is built once from an
// explicit, ordered list and read-only afterwards.
type Registry struct{ *registry.Registry[Factory] }

// NewRegistry returns a registry of units. A duplicate or empty name is a
// programming error and panics.
func NewRegistry(units ...Unit) *Registry {
	return &Registry{registry.New("policy type", units...)}
}

// Build builds the policy a spec names. An unknown type is a config error at
// the spec's place in the file.
func (r *Registry) Build(spec config.PolicySpec, env *Env) (Policy, error) {
	newPolicy, err := r.Lookup(spec.Type)
	if err != nil {
		return nil, spec.Config.Errorf("", "%v", err)
	}
	p, err := newPolicy(spec.Config, env)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("policy: unit %s returned a nil policy", spec.Type)
	}
	return p, nil
}
