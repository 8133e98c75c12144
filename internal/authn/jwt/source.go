package jwt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/usagepool"
)

// ErrNoKeys is the cause of the refusal of a request that arrived while no
// key set has been fetched yet (the key server has been unreachable since
// load): the token cannot be checked, so the request fails closed.
var ErrNoKeys = errors.New("jwt: no keys fetched yet")

// keySource gives an authenticator its raw keys.
type keySource interface {
	// current returns the key set, waiting a bounded time for the first
	// fetch if there is none yet; ErrNoKeys when there still is none.
	current(ctx context.Context) (*rawSet, error)
	// refetch is called for a token naming a kid the set lacks. It fetches
	// the set again unless a fetch triggered that way ran too recently, and
	// returns the set it then has.
	refetch(ctx context.Context) *rawSet
}

// staticSource is a set of local keys.
type staticSource struct{ set *rawSet }

func (s staticSource) current(context.Context) (*rawSet, error) { return s.set, nil }
func (s staticSource) refetch(context.Context) *rawSet          { return s.set }

// Bounds on what a key server may send.
const (
	maxDocBytes  = 1 << 20
	maxRedirects = 3
)

// remoteSettings are what decide how a remote key set is fetched. Two
// authenticators with equal settings share one remote through the pool.
type remoteSettings struct {
	jwksURL   string // jwks_url; "" with discovery
	issuer    string // for discovery
	settings  *settings
	refresh   time.Duration
	maxStale  time.Duration
	refetch   time.Duration
	timeout   time.Duration
	allowHTTP bool
}

// poolKey names the remote in the shared pool: everything that changes what
// is fetched or how. The algorithm allow-list is not part of it: the raw
// set is shared and each authenticator derives the keys it may use.
func (rs *remoteSettings) poolKey() string {
	return fmt.Sprintf(poolPrefix+"%s\x00%s\x00%x\x00%v\x00%v\x00%v\x00%v\x00%t",
		rs.jwksURL, rs.issuer, rs.settings.caSum, rs.refresh, rs.maxStale, rs.refetch, rs.timeout, rs.allowHTTP)
}

// poolPrefix starts the pool keys of remotes.
const poolPrefix = "jwt.remote\x00"

// KeySetRefresh is the outcome of refreshing one remote key set on an
// operator's request.
type KeySetRefresh struct {
	// Source is the JWKS URL, or the issuer whose discovery names it.
	Source string `json:"source"`
	// Keys is the number of keys in the set now (the last good set when
	// the fetch failed).
	Keys int `json:"keys"`
	// Error is why the fetch failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// RefreshKeySets fetches every remote key set shared through pool at
// once, waiting for each fetch (together, each within its fetch_timeout)
// rather than for the background schedule: a key withdrawn from an
// issuer's JWKS stops verifying tokens when this returns, and tokens
// verified with it are no longer taken from the verified-token cache. A
// fetch already in flight when it was called is waited for and followed
// by a new one, so every result is of a fetch that started after the
// call. The periodic schedule is not moved. The results are in no
// particular order; none when the pool holds no remote key set.
func RefreshKeySets(ctx context.Context, pool *usagepool.Pool) []KeySetRefresh {
	var remotes []*remote
	usagepool.Each(pool, poolPrefix, func(_ string, r *remote) { remotes = append(remotes, r) })
	out := make([]KeySetRefresh, len(remotes))
	closed := make([]bool, len(remotes))
	var wg sync.WaitGroup
	for i, r := range remotes {
		wg.Go(func() {
			err := r.refreshNow(ctx)
			// A source a reload let go of meanwhile serves no one: not a
			// failure to report.
			closed[i] = errors.Is(err, errClosed)
			out[i] = KeySetRefresh{Source: r.label}
			if s := r.set.Load(); s != nil {
				out[i].Keys = len(s.keys)
			}
			if err != nil {
				out[i].Error = err.Error()
			}
		})
	}
	wg.Wait()
	kept := out[:0]
	for i, k := range out {
		if !closed[i] {
			kept = append(kept, k)
		}
	}
	return kept
}

// errClosed is the outcome of a refresh of a remote closed meanwhile (a
// reload dropped its last user).
var errClosed = errors.New("jwt: key set no longer in use")

// refreshNow fetches the key set with a fetch that starts after the call
// (it waits out one already in flight) and returns its error.
func (r *remote) refreshNow(ctx context.Context) error {
	r.mu.Lock()
	prior := r.flight
	r.mu.Unlock()
	if prior != nil {
		select {
		case <-prior.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.ctx.Done():
			return errClosed
		}
	}
	if r.ctx.Err() != nil {
		return errClosed
	}
	// Any fetch start joins began after prior ended, so after the call.
	c := r.start(false)
	select {
	case <-c.done:
		if r.ctx.Err() != nil {
			return errClosed
		}
		if c.err == nil {
			r.log.Info("jwt: key set fetched on request", "source", r.label)
		}
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	case <-r.ctx.Done():
		return errClosed
	}
}

// remote is a key set fetched from a JWKS URL, found by OIDC discovery or
// given, and refreshed in the background. It keeps the last good set when a
// fetch fails. Safe for concurrent use; shared by every authenticator with
// the same settings, through the pool.
type remote struct {
	rs      remoteSettings
	label   string // metrics and logs: the JWKS URL or the issuer
	now     func() time.Time
	log     *slog.Logger
	metrics *telemetry.Metrics
	latency telemetry.RemoteLatency // of fetches
	client  *http.Client
	tr      *http.Transport

	set   atomic.Pointer[rawSet]
	first chan struct{} // closed when the first fetch has ended, well or not

	ctx    context.Context // ends fetches in flight on Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the refresh loop has stopped

	mu          sync.Mutex
	flight      *fetchCall
	lastTrigger time.Time // start of the last fetch a token triggered
	firstDone   bool

	// fetchedAt is when a fetch last succeeded; only the fetch in flight
	// touches it.
	fetchedAt time.Time
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// newRemote starts fetching in the background and returns at once: a key
// server that is down at load must not stop the gateway from loading.
func newRemote(rs remoteSettings, now func() time.Time, log *slog.Logger, m *telemetry.Metrics) *remote {
	r := &remote{
		rs:      rs,
		label:   rs.jwksURL,
		now:     now,
		log:     log,
		metrics: m,
		first:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	if r.label == "" {
		r.label = rs.issuer
	}
	r.latency = m.JWKSFetch(r.label)
	r.tr = &http.Transport{
		// No proxy from the environment: keys come only from where the
		// config says.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: rs.timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: rs.settings.roots},
		TLSHandshakeTimeout:   rs.timeout,
		ResponseHeaderTimeout: rs.timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	r.client = &http.Client{Transport: r.tr, Timeout: rs.timeout, CheckRedirect: sameHostRedirect}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.loop()
	return r
}

// sameHostRedirect follows a few redirects on the same host, never to
// another host (where anyone could publish keys) and never from https to
// http.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.New("jwt: too many redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("jwt: redirect to another host (%s) refused", req.URL.Host)
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("jwt: redirect from https to http refused")
	}
	return nil
}

// Close stops the refresh and any fetch in flight.
func (r *remote) Close() error {
	r.cancel()
	<-r.done
	r.tr.CloseIdleConnections()
	return nil
}

// loop fetches at once, then every refresh interval; after a failure it
// tries again sooner (every unknown_kid_refetch), so that a key server that
// was down is picked up again quickly.
func (r *remote) loop() {
	defer close(r.done)
	err := r.wait(r.start(false))
	for {
		d := r.rs.refresh
		if err != nil {
			d = min(d, r.rs.refetch)
		}
		t := time.NewTimer(d)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err = r.refresh()
	}
}

// refresh fetches the key set now (or joins the fetch in flight) and waits
// for the result. The background loop calls it; tests call it to drive a
// refresh without waiting for the interval.
func (r *remote) refresh() error { return r.wait(r.start(false)) }

func (r *remote) wait(c *fetchCall) error {
	select {
	case <-c.done:
		return c.err
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// start returns the fetch in flight, or starts one. With limited (a fetch
// a token asked for), a new fetch starts only if the last such one began
// at least unknown_kid_refetch ago; otherwise start returns nil. So however
// many tokens with unknown kids arrive, together they cost one fetch per
// interval, and those arriving during a fetch share it.
func (r *remote) start(limited bool) *fetchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flight != nil {
		return r.flight
	}
	if limited {
		now := r.now()
		if !r.lastTrigger.IsZero() && now.Sub(r.lastTrigger) < r.rs.refetch {
			return nil
		}
		r.lastTrigger = now
	}
	c := &fetchCall{done: make(chan struct{})}
	r.flight = c
	go func() {
		c.err = r.fetch()
		r.mu.Lock()
		r.flight = nil
		if !r.firstDone {
			r.firstDone = true
			close(r.first)
		}
		r.mu.Unlock()
		close(c.done)
	}()
	return c
}

func (r *remote) current(ctx context.Context) (*rawSet, error) {
	if s := r.set.Load(); s != nil {
		return s, nil
	}
	// No keys yet: wait for the first fetch, then, if it failed, for one
	// more (rate limited like unknown kids), all within fetch_timeout.
	wctx, cancel := context.WithTimeout(ctx, r.rs.timeout)
	defer cancel()
	select {
	case <-r.first:
	case <-wctx.Done():
	}
	if s := r.set.Load(); s != nil {
		return s, nil
	}
	if wctx.Err() == nil {
		if c := r.start(true); c != nil {
			select {
			case <-c.done:
			case <-wctx.Done():
			}
		}
	}
	if s := r.set.Load(); s != nil {
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("jwt: waiting for keys: %w", err)
	}
	return nil, ErrNoKeys
}

func (r *remote) refetch(ctx context.Context) *rawSet {
	if c := r.start(true); c != nil {
		wctx, cancel := context.WithTimeout(ctx, r.rs.timeout)
		select {
		case <-c.done:
		case <-wctx.Done():
		}
		cancel()
	}
	return r.set.Load()
}

// fetch fetches the key set once and installs it if it changed. It is the
// only code touching fetchedAt, and runs once at a time (see start).
func (r *remote) fetch() error {
	ctx, cancel := context.WithTimeout(r.ctx, r.rs.timeout)
	defer cancel()
	start := time.Now()
	keys, err := r.fetchKeys(ctx)
	r.latency.Observe(ctx, time.Since(start).Seconds(), err == nil)
	if err != nil {
		r.metrics.KeySetFetched(r.label, false, 0, 0)
		if !r.fetchedAt.IsZero() && r.now().Sub(r.fetchedAt) >= r.rs.maxStale {
			r.expire(err)
			return err
		}
		r.log.Warn("jwt: key set fetch failed; keeping the last good keys", "source", r.label,
			"have_keys", r.set.Load() != nil, "err", err)
		return err
	}
	r.fetchedAt = r.now()
	r.install(keys)
	r.metrics.KeySetFetched(r.label, true, float64(r.now().UnixNano())/1e9, len(keys))
	return nil
}

// install makes keys the current set if they differ from it. Keys already
// known keep their identity, so cached tokens verified with them stay
// good; keys gone are marked dropped, so cached tokens verified with them
// are no longer honoured.
func (r *remote) install(keys []*rawKey) {
	old := r.set.Load()
	if old != nil && sameKeys(old.keys, keys) {
		return
	}
	byID := make(map[[32]byte]*rawKey)
	if old != nil {
		for _, k := range old.keys {
			byID[k.id] = k
		}
	}
	kept := make(map[*rawKey]bool)
	for i, k := range keys {
		if o, ok := byID[k.id]; ok {
			keys[i] = o
			kept[o] = true
		}
	}
	r.set.Store(&rawSet{keys: keys})
	if old != nil {
		for _, k := range old.keys {
			if !kept[k] {
				k.dropped.Store(true)
			}
		}
	}
	r.log.Info("jwt: key set changed", "source", r.label, "keys", len(keys))
}

// expire drops a key set that could not be refreshed for jwks_max_stale:
// a key the issuer withdrew meanwhile must not be trusted for ever
// because the issuer cannot be reached. Its keys are marked dropped, so
// cached verdicts go too; requests fail closed (503 jwks_unavailable)
// until a fetch succeeds.
func (r *remote) expire(err error) {
	old := r.set.Swap(nil)
	if old == nil {
		return
	}
	for _, k := range old.keys {
		k.dropped.Store(true)
	}
	r.log.Error("jwt: key set not refreshed within jwks_max_stale; its keys are no longer trusted until a fetch succeeds",
		"source", r.label, "last_success", r.fetchedAt, "max_stale", r.rs.maxStale, "err", err)
}

func (r *remote) fetchKeys(ctx context.Context) ([]*rawKey, error) {
	uri := r.rs.jwksURL
	if uri == "" {
		// Discovered at every fetch, not once: an issuer that moves its
		// keys to a new jwks_uri may leave the old URL serving the old
		// set, withdrawn keys included, and a jwks_uri read once would
		// trust it for ever. One more small request per refresh.
		u, err := r.discover(ctx)
		if err != nil {
			return nil, err
		}
		uri = u
	}
	body, err := r.get(ctx, uri)
	if err == nil {
		var keys []*rawKey
		var skipped []string
		keys, skipped, err = parseJWKS(body)
		if errors.Is(err, errNoSignatureKeys) {
			// The issuer's own well-formed answer that it signs with no
			// key: it withdrew them all. That is a key set, an empty one,
			// not a failed fetch: keeping the last good keys would keep
			// what it withdrew.
			r.log.Warn("jwt: the issuer's key set holds no signature key; every token is refused until it has one",
				"source", r.label)
			return []*rawKey{}, nil
		}
		if err == nil {
			if len(skipped) > 0 {
				r.log.Debug("jwt: keys skipped", "source", r.label, "skipped", strings.Join(skipped, "; "))
			}
			return keys, nil
		}
	}
	return nil, err
}

// discover reads the OpenID Provider metadata (OIDC Discovery 1.0 §4) and
// returns its jwks_uri after checking that it speaks for our issuer.
func (r *remote) discover(ctx context.Context) (string, error) {
	body, err := r.get(ctx, strings.TrimSuffix(r.rs.issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return "", fmt.Errorf("jwt: discovery document: %w", err)
	}
	// §4.3: the issuer must be exactly the one we asked about, or a
	// document from elsewhere could substitute its keys.
	if meta.Issuer != r.rs.issuer {
		return "", fmt.Errorf("jwt: discovery document is for issuer %q, not %q", truncate(meta.Issuer), r.rs.issuer)
	}
	if meta.JWKSURI == "" {
		return "", errors.New("jwt: discovery document has no jwks_uri")
	}
	if err := checkFetchURL(meta.JWKSURI, r.rs.allowHTTP); err != nil {
		return "", fmt.Errorf("jwt: discovery jwks_uri: %w", err)
	}
	return meta.JWKSURI, nil
}

func (r *remote) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	res, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwt: %s answered %s", url, res.Status)
	}
	if res.ContentLength > maxDocBytes {
		return nil, fmt.Errorf("jwt: %s: response larger than %d bytes", url, maxDocBytes)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwt: reading %s: %w", url, err)
	}
	if len(body) > maxDocBytes {
		return nil, fmt.Errorf("jwt: %s: response larger than %d bytes", url, maxDocBytes)
	}
	return body, nil
}
