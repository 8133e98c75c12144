package main

import (
	"context"
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/extauthz"
	"github.com/gatehouse/gatehouse/internal/forwardauth"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// startDoors opens the ext_authz and forward-auth listeners cfg asks for,
// deciding with g, and returns what stops them (before the gateway
// drains, so that no decision is asked of a closed runtime).
func startDoors(g *gateway.Gateway, cfg *config.Config, log *slog.Logger) (stop func(context.Context), err error) {
	var stops []func(context.Context)
	stop = func(ctx context.Context) {
		for _, s := range stops {
			s(ctx)
		}
	}
	if c := cfg.ExtAuthz; c != nil {
		s, err := extauthz.Start(g, c, log)
		if err != nil {
			return nil, cfg.Errorf("ext_authz", "%v", err)
		}
		stops = append(stops, func(ctx context.Context) { _ = s.Shutdown(ctx) })
	}
	if c := cfg.ForwardAuth; c != nil {
		s, err := forwardauth.Start(g, c, cfg.TrustedPrefixes(), log)
		if err != nil {
			stop(context.Background())
			return nil, cfg.Errorf("forward_auth.address", "%v", err)
		}
		stops = append(stops, func(ctx context.Context) { _ = s.Shutdown(ctx) })
	}
	return stop, nil
}
