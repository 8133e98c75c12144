package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authserver"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// observe records a finished request in the decision ring and the traffic
// stats, and a denial in the audit log.
func (g *Gateway) observe(x *exchange, status int) {
	g.decisions.add(x, status, g.now().Sub(x.Start))
	g.stats.add(x.decision, x.code, x.Start)
	if x.decision != "deny" {
		return
	}
	e := audit.Event{Kind: audit.Denial, Time: x.Start, RequestID: x.RequestID, ClientIP: x.ClientIP,
		Policy: x.denier, Code: x.code, Status: status, Detail: x.detail}
	if status == http.StatusUnauthorized {
		e.Kind = audit.AuthFailure
	}
	if x.route != nil {
		e.Route = x.route.info.Name
	}
	if x.span != nil {
		e.TraceID, e.SpanID = tracing.IDs(x.span)
	}
	if p := x.Principal; p != nil {
		e.Principal, e.ClientID = p.Subject, p.ClientID
	}
	g.audit.Record(e)
}

// Audit returns the gateway's audit log, for packages wired outside the
// policy chain.
func (g *Gateway) Audit() *audit.Log { return g.audit }

// adminOptions are what the admin listener serves.
func (g *Gateway) adminOptions(cfg *config.Config) admin.Options {
	acc := admin.Access{Address: cfg.Admin.Address}
	if cfg.Admin.Token != nil {
		acc.Token = cfg.Admin.Token.Value()
	}
	acc.ClientCerts = cfg.Admin.TLS != nil && cfg.Admin.TLS.ClientCAFile != ""
	return admin.Options{Metrics: g.metrics, Ready: g.ready.Load, Backend: adminBackend{g}, Audit: g.audit, Access: acc}
}

// AdminHandler returns the admin listener's handler, for tests and for
// embedding the admin API elsewhere. Its decisions are empty when the
// config has the admin listener off: none are kept then.
func (g *Gateway) AdminHandler() http.Handler {
	return admin.Handler(g.adminOptions(g.current.Load().cfg))
}

// adminBackend is the gateway as the admin API sees it.
type adminBackend struct{ g *Gateway }

var _ admin.Backend = adminBackend{}

func (b adminBackend) Config() (map[string]any, error) {
	rt := b.g.acquire()
	defer rt.release()
	return rt.cfg.Redacted()
}

func (b adminBackend) Routes() []admin.Route {
	rt := b.g.acquire()
	defer rt.release()
	out := make([]admin.Route, 0, len(rt.routes))
	for i, r := range rt.routes {
		rc := rt.cfg.Routes[i]
		ar := admin.Route{Name: r.info.Name, Protocol: r.info.Protocol.String(), Hosts: rc.Match.Hosts, Path: rc.Match.Path,
			PathPrefix: rc.Match.PathPrefix, Methods: rc.Match.Methods, Upstream: rc.Upstream.URL, Policies: make([]string, 0, len(r.chain))}
		for _, l := range r.chain {
			ar.Policies = append(ar.Policies, l.name)
		}
		out = append(out, ar)
	}
	return out
}

func (b adminBackend) Consumers(ctx context.Context) []admin.Consumer {
	rt := b.g.acquire()
	defer rt.release()
	seen := b.g.decisions.consumerCounts()
	byName := map[string]*admin.Consumer{}
	get := func(name, source string) *admin.Consumer {
		c := byName[name]
		if c == nil {
			c = seen[name]
			if c == nil {
				c = &admin.Consumer{Name: name}
			}
			byName[name] = c
		}
		if !slices.Contains(c.Sources, source) {
			c.Sources = append(c.Sources, source)
		}
		return c
	}
	for _, k := range apiKeyConsumers(rt.cfg) {
		c := get(k.name, "apikey")
		if c.Tier == "" {
			c.Tier = k.tier
		}
	}
	if as := rt.cfg.AuthorizationServer; as != nil {
		if clients, err := authserver.Clients(*as, rt.cfg, b.g.baseDir); err == nil {
			for _, cl := range clients {
				get(cl.ID, "oauth_client")
			}
		}
	}
	for name := range seen {
		get(name, "traffic")
	}
	out := make([]admin.Consumer, 0, len(byName))
	for _, c := range byName {
		for _, r := range rt.routes {
			for _, l := range r.chain {
				ur, ok := l.policy.(admin.UsageReporter)
				if !ok {
					continue
				}
				u, err := ur.ConsumerUsage(ctx, c.Name)
				if err != nil {
					continue
				}
				for i := range u {
					u[i].Route, u[i].Policy = r.info.Name, l.name
				}
				c.Usage = append(c.Usage, u...)
			}
		}
		sort.Strings(c.Sources)
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Name < out[j].Name
	})
	return out
}

type keyConsumer struct{ name, tier string }

// apiKeyConsumers finds the consumers of apikey authenticators written in
// the config (keys_file entries are not listed: the file is the
// authenticator's to read).
func apiKeyConsumers(cfg *config.Config) []keyConsumer {
	tree, err := cfg.Redacted()
	if err != nil {
		return nil
	}
	var out []keyConsumer
	routes, _ := tree["routes"].([]any)
	for _, r := range routes {
		rm, _ := r.(map[string]any)
		pols, _ := rm["policies"].([]any)
		for _, p := range pols {
			pm, _ := p.(map[string]any)
			au, _ := pm["authenticate"].(map[string]any)
			with, _ := au["with"].([]any)
			for _, w := range with {
				wm, _ := w.(map[string]any)
				ak, _ := wm["apikey"].(map[string]any)
				keys, _ := ak["keys"].([]any)
				for _, k := range keys {
					km, _ := k.(map[string]any)
					name, _ := km["consumer"].(string)
					tier, _ := km["tier"].(string)
					if name != "" && !slices.ContainsFunc(out, func(c keyConsumer) bool { return c.name == name }) {
						out = append(out, keyConsumer{name, tier})
					}
				}
			}
		}
	}
	return out
}

func (b adminBackend) Tokens() admin.Tokens {
	t := admin.Tokens{Issued: []admin.IssuedToken{}, Revoked: []admin.RevokedToken{},
		Note: "issued: from the audit events held in memory since start (the authorization server keeps no list: its tokens are self-contained JWTs); revoked: every token id refused now"}
	for _, e := range b.g.audit.Recent(audit.Filter{}, 0) {
		if e.Kind != audit.TokenIssue && e.Kind != audit.STSIssue {
			continue
		}
		t.Issued = append(t.Issued, admin.IssuedToken{JTI: e.JTI, ClientID: e.ClientID, Subject: e.Principal, Issued: e.Time,
			Expires: e.Expires, KeyID: e.KeyID, Kind: string(e.Kind), Revoked: b.g.revocations.Revoked(e.JTI)})
	}
	for _, r := range b.g.revocations.Entries() {
		t.Revoked = append(t.Revoked, admin.RevokedToken{JTI: r.JTI, Until: r.Until.UTC()})
	}
	sort.Slice(t.Revoked, func(i, j int) bool { return t.Revoked[i].Until.Before(t.Revoked[j].Until) })
	return t
}

func (b adminBackend) Keys() (admin.Keys, error) {
	rt := b.g.acquire()
	defer rt.release()
	if rt.auth == nil {
		return admin.Keys{}, admin.ErrNotConfigured
	}
	infos, jwks := rt.auth.Keys()
	k := admin.Keys{Issuer: rt.auth.Issuer(), Active: rt.auth.ActiveKeyID(), JWKS: jwks, Keys: make([]admin.KeyInfo, 0, len(infos))}
	for _, i := range infos {
		k.Keys = append(k.Keys, admin.KeyInfo(i))
	}
	return k, nil
}

func (b adminBackend) Decision(id string) (admin.Decision, bool) {
	d, ok := b.g.decisions.find(id)
	if ok {
		d.Events, _ = b.g.audit.Search(id)
	}
	return d, ok
}

func (b adminBackend) Decisions(f admin.DecisionFilter, limit int) []admin.Decision {
	out := []admin.Decision{}
	b.g.decisions.each(func(rec *decisionRecord) bool {
		if (f.Decision == "" || rec.decision == f.Decision) && (f.Route == "" || rec.route == f.Route) && (f.Code == "" || rec.code == f.Code) {
			out = append(out, rec.view())
		}
		return len(out) < limit
	})
	return out
}

func (b adminBackend) Stats() admin.Stats { return b.g.stats.view() }

func (b adminBackend) Reload(context.Context) error {
	if b.g.load == nil {
		return admin.ErrNotConfigured
	}
	cfg, err := b.g.load()
	if err != nil {
		b.g.audit.Record(audit.Event{Kind: audit.ConfigReload, Result: "failure", Detail: "the config file does not load"})
		return err
	}
	return b.g.Reload(cfg)
}

func (b adminBackend) RotateKeys(ctx context.Context) error {
	err := b.g.RotateKeys(ctx)
	if errors.Is(err, errNoAuthServer) {
		return admin.ErrNotConfigured
	}
	return err
}

// RefreshKeySets fetches every remote key set the routes' jwt
// authenticators trust now (jwt.RefreshKeySets over the gateway's pool,
// which outlives reloads), sorted by source. The admin API's
// keys/refresh and `serve`'s SIGUSR2 call it.
func (g *Gateway) RefreshKeySets(ctx context.Context) []jwt.KeySetRefresh {
	res := jwt.RefreshKeySets(ctx, g.pool)
	sort.Slice(res, func(i, j int) bool { return res[i].Source < res[j].Source })
	return res
}

func (b adminBackend) RefreshKeySets(ctx context.Context) []admin.KeySetRefresh {
	res := b.g.RefreshKeySets(ctx)
	out := make([]admin.KeySetRefresh, len(res))
	for i, r := range res {
		out[i] = admin.KeySetRefresh(r)
	}
	return out
}

func (b adminBackend) Revoke(ctx context.Context, req admin.RevokeRequest) (admin.Revoked, error) {
	rt := b.g.acquire()
	defer rt.release()
	if req.Token != "" {
		if rt.auth == nil {
			return admin.Revoked{}, admin.ErrNotConfigured
		}
		jti, exp, err := rt.auth.RevokeToken(ctx, req.Token)
		if err != nil {
			return admin.Revoked{}, fmt.Errorf("gateway: revoking a token: %w", err)
		}
		return admin.Revoked{JTI: jti, Until: exp.UTC()}, nil
	}
	until := req.Until
	if until.IsZero() {
		// Unknown expiry: as long as the longest-lived token can live.
		life := 24 * time.Hour
		if rt.auth != nil {
			life = rt.auth.MaxLifetime() + time.Minute
		}
		for _, e := range b.g.audit.Recent(audit.Filter{Kind: audit.TokenIssue}, 0) {
			if e.JTI == req.JTI && !e.Expires.IsZero() {
				life = e.Expires.Sub(b.g.now())
				break
			}
		}
		until = b.g.now().Add(life)
	}
	if rt.auth != nil {
		// Stored and published: every instance refuses it.
		if err := rt.auth.RevokeJTI(ctx, req.JTI, until); err != nil {
			return admin.Revoked{}, err
		}
	} else {
		b.g.revocations.Revoke(req.JTI, until)
	}
	return admin.Revoked{JTI: req.JTI, Until: until.UTC()}, nil
}
