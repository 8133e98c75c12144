package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var _ Store = (*Redis)(nil)

// RedisOptions configure NewRedis. Zero values take the defaults named.
type RedisOptions struct {
	// Addrs are host:port of the server, or of Redis Cluster nodes (more
	// than one address means a cluster). Required unless Sentinel is set,
	// and then empty: the sentinels name the master.
	Addrs []string
	// Sentinel, when set, finds the master through Redis Sentinel and
	// follows it across failovers.
	Sentinel *SentinelOptions
	// Username and Password authenticate to the data nodes (ACL or
	// requirepass); empty: none.
	Username, Password string
	// DB is the database number (not with a cluster).
	DB int
	// TLS, when set, connects with TLS (to the sentinels too).
	TLS *tls.Config
	// KeyPrefix is put before every key and channel name, so that several
	// deployments can share one Redis. It must not contain '{' or '}'
	// (they would capture the cluster hash tag). Empty: none.
	KeyPrefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound each step of an
	// operation. Defaults 2s, 500ms, 500ms: a limiter must not hang
	// requests. A charging call (Allow with a cost, IncrBy with n > 0) is
	// given up after ReadTimeout as a whole, or at its context's deadline
	// when that is sooner, and Redis charges nothing when it runs the
	// call later than that (see redisclock.go).
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections per node. 0: 10 per CPU.
	PoolSize int
}

// SentinelOptions find a master through Redis Sentinel.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the master under.
	MasterName string
	// Addrs are host:port of sentinels (one is enough to start; the
	// others are learnt from it).
	Addrs []string
	// Username and Password authenticate to the sentinels, which have
	// their own users, apart from the data nodes'.
	Username, Password string
}

// Redis is a Store in Redis, Redis Cluster or a Sentinel-managed
// master, shared by every gateway instance pointing at it. Allow is one
// server-side Lua script call (one round trip) that reads the server's
// clock, so instances with skewed clocks still agree. Failures to reach
// Redis wrap ErrUnavailable; nothing is retried silently (a retried
// INCRBY could count twice), and the client reconnects by itself once
// Redis is back. A charging call that Redis runs after the caller gave up
// charges nothing (see redisclock.go).
//
// Keys are KeyPrefix+key. Allow's buckets are KeyPrefix+"{@"+key+"}:"+i,
// so that in a cluster all buckets of one call hash to the same slot;
// callers should not use keys starting with "{".
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration // a charging call's whole budget (ReadTimeout)
	closed  atomic.Bool

	clock redisClock
	stop  chan struct{} // closed by Close: ends the clock sampler

	late                sync.WaitGroup // charging calls still waiting for a reply
	refunds, unrefunded atomic.Uint64

	mu   sync.Mutex
	subs map[*redis.PubSub]struct{}
	wg   sync.WaitGroup
}

// NewRedis returns a client for opts. It does not connect: the first
// operation does, and a Redis that is down makes operations fail with
// ErrUnavailable rather than the gateway fail to start.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if len(opts.Addrs) == 0 && opts.Sentinel == nil {
		return nil, errors.New("store: redis: no address")
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("store: redis: key prefix %q must not contain { or }", opts.KeyPrefix)
	}
	if len(opts.Addrs) > 1 && opts.DB != 0 {
		return nil, errors.New("store: redis: a cluster has no databases other than 0")
	}
	if s := opts.Sentinel; s != nil {
		if len(opts.Addrs) > 0 {
			return nil, errors.New("store: redis: with sentinel, the sentinels name the master: no addresses")
		}
		if s.MasterName == "" || len(s.Addrs) == 0 {
			return nil, errors.New("store: redis: sentinel needs a master name and at least one address")
		}
	}
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	r := &Redis{prefix: opts.KeyPrefix, timeout: def(opts.ReadTimeout, 500*time.Millisecond),
		subs: make(map[*redis.PubSub]struct{}), stop: make(chan struct{})}
	// Every new connection samples its server's clock before its first
	// command (one TIME), so that a call's deadline can be converted
	// without a round trip of its own, and a failover's new master is
	// sampled before it runs anything.
	onConnect := func(node string) func(context.Context, *redis.Conn) error {
		return func(ctx context.Context, cn *redis.Conn) error {
			err := r.clock.sample(ctx, node, cn)
			if _, refused := errors.AsType[redis.Error](err); refused {
				// Answered, with a refusal: a sentinel's connection
				// (go-redis runs this hook there too), or a user not
				// allowed TIME (its charging calls will fail, saying so).
				return nil
			}
			// A TIME that failed otherwise (timed out) may still be
			// answered on this connection: it must not carry anything else.
			return err
		}
	}
	// The clients' read timeout is lateReplyWait, so that a charging call
	// whose caller gave up can still read its late reply (see charge);
	// every other call is bounded by the store's timeout through its
	// context (bound), and waiting for a pooled connection too.
	dial, read, write := def(opts.DialTimeout, 2*time.Second), max(r.timeout, lateReplyWait), def(opts.WriteTimeout, 500*time.Millisecond)
	pool := r.timeout
	// No silent retries (MaxRetries -1): a write whose reply was lost may
	// have been applied, and counting twice is worse than reporting the
	// failure. A request's deadline bounds its store call too
	// (ContextTimeoutEnabled). Managed-service maintenance push
	// notifications are not needed and not every server understands the
	// handshake.
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	switch {
	case opts.Sentinel != nil:
		r.client = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       opts.Sentinel.MasterName,
			SentinelAddrs:    opts.Sentinel.Addrs,
			SentinelUsername: opts.Sentinel.Username,
			SentinelPassword: opts.Sentinel.Password,
			Username:         opts.Username,
			Password:         opts.Password,
			DB:               opts.DB,
			TLSConfig:        opts.TLS,
			DialTimeout:      dial, ReadTimeout: read, WriteTimeout: write,
			PoolSize:              opts.PoolSize,
			PoolTimeout:           pool,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			OnConnect:             onConnect(""),
		})
	case len(opts.Addrs) > 1:
		r.client = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:       opts.Addrs,
			Username:    opts.Username,
			Password:    opts.Password,
			TLSConfig:   opts.TLS,
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			PoolSize:              opts.PoolSize,
			PoolTimeout:           pool,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			// Each node's clock is its own: samples are kept per node.
			NewClient: func(o *redis.Options) *redis.Client {
				o.OnConnect = onConnect(o.Addr)
				return redis.NewClient(o)
			},
			MaintNotificationsConfig: noMaint,
		})
	default:
		r.client = redis.NewClient(&redis.Options{
			Addr:        opts.Addrs[0],
			Username:    opts.Username,
			Password:    opts.Password,
			DB:          opts.DB,
			TLSConfig:   opts.TLS,
			DialTimeout: dial, ReadTimeout: read, WriteTimeout: write,
			PoolSize:                 opts.PoolSize,
			PoolTimeout:              pool,
			ContextTimeoutEnabled:    true,
			MaxRetries:               -1,
			OnConnect:                onConnect(""),
			MaintNotificationsConfig: noMaint,
		})
	}
	r.wg.Add(1)
	go r.sampler()
	return r, nil
}

// sampler takes a new clock sample of every node whose sample is older
// than resampleAfter, so that drift never widens a bound by much; it
// runs until Close. Nodes no longer masters of a cluster are forgotten.
func (r *Redis) sampler() {
	defer r.wg.Done()
	t := time.NewTicker(sampleTick)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		stale := r.clock.stale(time.Now())
		if len(stale) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		switch c := r.client.(type) {
		case *redis.ClusterClient:
			masters := map[string]*redis.Client{}
			var mu sync.Mutex
			_ = c.ForEachMaster(ctx, func(_ context.Context, n *redis.Client) error {
				mu.Lock()
				masters[n.Options().Addr] = n
				mu.Unlock()
				return nil
			})
			for _, addr := range stale {
				if n, ok := masters[addr]; ok {
					_ = r.clock.sample(ctx, addr, n)
				} else if len(masters) > 0 {
					r.clock.forget(addr)
				}
			}
		default:
			_ = r.clock.sample(ctx, "", r.client)
		}
		cancel()
	}
}

// charging prepares a call that charges on the node holding key: its
// context, ended when the caller gives up (after the store's timeout, or
// at ctx's deadline when sooner), and the same moment on the server's
// clock (µs, chargeMargin earlier) for the script to check.
func (r *Redis) charging(ctx context.Context, key string) (context.Context, context.CancelFunc, time.Time, int64, error) {
	deadline := time.Now().Add(r.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	node, cmd := "", redis.Cmdable(r.client)
	if c, ok := r.client.(*redis.ClusterClient); ok {
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			cancel()
			return nil, nil, time.Time{}, 0, r.unavailable(err)
		}
		node, cmd = n.Options().Addr, n
	}
	s, ok := r.clock.get(node)
	if !ok {
		// No connection to this node yet: sample it now (once).
		if err := r.clock.sample(ctx, node, cmd); err != nil {
			cancel()
			return nil, nil, time.Time{}, 0, r.unavailable(err)
		}
		s, _ = r.clock.get(node)
	}
	return ctx, cancel, deadline, serverDeadline(s, deadline), nil
}

// lateReplyWait is how long a charging call whose caller gave up keeps
// waiting for Redis's reply, to take back a charge Redis made before the
// deadline but answered too late (its reply held behind a stall).
const lateReplyWait = 10 * time.Second

// charge runs call, a charging call, for a caller who waits until ctx
// ends (at deadline, or sooner if cancelled). The call itself runs on
// its own goroutine and may wait lateReplyWait longer for its reply: when
// the caller has given up by then and the reply says Redis charged,
// undo takes the charge back, so that a refused request consumes
// nothing even when Redis ran its call in time but answered late. A
// reply that never comes (the connection or the server died) leaves the
// charge, if any, in place.
func (r *Redis) charge(ctx context.Context, deadline time.Time, call func(context.Context) (charged bool, err error), undo func(context.Context) error) error {
	var state atomic.Int32 // 0: waiting, 1: answered the caller, 2: the caller gave up
	answer := make(chan error, 1)
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(lateReplyWait))
	r.late.Add(1)
	go func() {
		defer r.late.Done()
		defer cancel()
		charged, err := call(wctx)
		if state.CompareAndSwap(0, 1) {
			answer <- err
			return
		}
		if !charged {
			return
		}
		uctx, ucancel := context.WithTimeout(context.Background(), r.timeout)
		defer ucancel()
		if undo(uctx) == nil {
			r.refunds.Add(1)
		} else {
			r.unrefunded.Add(1)
		}
	}()
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		if !state.CompareAndSwap(0, 2) {
			return <-answer
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("store: redis: %w", ctx.Err())
		}
		return fmt.Errorf("%w: redis: no answer before the deadline (any charge will be taken back): %w", ErrUnavailable, ctx.Err())
	}
}

// LateRefunds reports how many charges Redis made for callers that had
// given up were taken back (refunded), and how many could not be (the
// undo failed).
func (r *Redis) LateRefunds() (refunded, failed uint64) {
	return r.refunds.Load(), r.unrefunded.Load()
}

// errLate is a charging call that Redis ran after its deadline, and so
// did not charge.
var errLate = fmt.Errorf("%w: redis: the call reached Redis after the caller's deadline; nothing was charged", ErrUnavailable)

// unavailable classifies err: failures to reach Redis, and Redis saying
// it cannot serve now (LOADING, CLUSTERDOWN, TRYAGAIN, MASTERDOWN,
// READONLY), wrap ErrUnavailable; a cancelled context and Redis refusing
// the command itself do not.
func (r *Redis) unavailable(err error) error {
	if err == nil {
		return nil
	}
	if r.closed.Load() || errors.Is(err, redis.ErrClosed) {
		return ErrClosed
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: redis: %w", err)
	}
	var re redis.Error
	if errors.As(err, &re) && !redis.IsLoadingError(err) && !redis.IsClusterDownError(err) &&
		!redis.IsTryAgainError(err) && !redis.IsMasterDownError(err) && !redis.IsReadOnlyError(err) {
		if strings.Contains(err.Error(), "not an integer") {
			return ErrNotInteger
		}
		return fmt.Errorf("store: redis: %w", err)
	}
	return fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
}

func (r *Redis) check() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, r.unavailable(err)
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.check(); err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return r.unavailable(r.client.Set(ctx, r.prefix+key, value, redisTTL(ttl)).Err())
}

// redisTTL maps "no expiry" to go-redis's 0 and rounds sub-millisecond
// TTLs up, so that a positive TTL never means "keep forever".
func redisTTL(ttl time.Duration) time.Duration {
	switch {
	case ttl <= 0:
		return 0
	case ttl < time.Millisecond:
		return time.Millisecond
	}
	return ttl
}

// SetNX implements Store.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := r.check(); err != nil {
		return false, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	ok, err := r.client.SetNX(ctx, r.prefix+key, value, redisTTL(ttl)).Result()
	return ok, r.unavailable(err)
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.check(); err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return r.unavailable(r.client.Del(ctx, r.prefix+key).Err())
}

// incrScript is IncrBy on the server. KEYS[1] is the counter; ARGV[1] n,
// ARGV[2] the TTL in milliseconds for a new counter (0: none), ARGV[3]
// the deadline in µs on the server's clock (0: none). It creates the
// counter at 0 with the TTL when absent, adds n and returns the new
// value; past the deadline it changes nothing and fails with "LATE".
var incrScript = redis.NewScript(`
local dl = tonumber(ARGV[3])
if dl > 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000000 + tonumber(t[2]) > dl then
    return redis.error_reply('LATE deadline passed')
  end
end
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], '0', 'NX')
else
  redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[2])
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
`)

// IncrBy implements Store in one round trip (one EVALSHA). An increment
// (n > 0) charges: it carries the caller's deadline and Redis adds
// nothing when it runs later (the call then fails with ErrUnavailable).
// Reads (n = 0) and refunds (n < 0) carry none: a late refund is still
// right.
func (r *Redis) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	k := r.prefix + key
	ttlMS := redisTTL(ttl).Milliseconds()
	if n <= 0 {
		ctx, cancel := r.bound(ctx)
		defer cancel()
		v, err := incrScript.Run(ctx, r.client, []string{k}, n, ttlMS, 0).Int64()
		return v, r.unavailable(err)
	}
	ctx, cancel, deadline, sdl, err := r.charging(ctx, k)
	if err != nil {
		return 0, err
	}
	defer cancel()
	var v int64 // written by the call's goroutine; read only once it answered
	err = r.charge(ctx, deadline, func(ctx context.Context) (bool, error) {
		res, err := incrScript.Run(ctx, r.client, []string{k}, n, ttlMS, sdl).Int64()
		switch {
		case err == nil:
			v = res
			return true, nil
		case isLate(err):
			return false, errLate
		}
		return false, r.unavailable(err)
	}, func(ctx context.Context) error {
		return decrScript.Run(ctx, r.client, []string{k}, n).Err()
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// decrScript takes back an increment of ARGV[1] that was made for a
// caller who had given up, unless the counter has expired since.
var decrScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECRBY', KEYS[1], ARGV[1])
end
return 0
`)

// ungcraScript takes back a GCRA charge of ARGV[1] units made for a
// caller who had given up: each bucket's TAT moves back by the cost in
// its interval (ARGV[1+i], µs); a bucket whose TAT falls to now or before
// is full and is deleted. It never gives back more than was taken: when
// the bucket had spare capacity before the charge, the result is at most
// as full as it would have been.
var ungcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '')
  if tat then
    local nt = tat - tonumber(ARGV[1 + i]) * cost
    if nt <= now then
      redis.call('DEL', KEYS[i])
    else
      local ttl = math.ceil((nt - now) / 1000)
      if ttl < 1 then ttl = 1 end
      redis.call('SET', KEYS[i], string.format('%.17g', nt), 'PX', ttl)
    end
  end
end
return 1
`)

// bound gives a call that does not charge the store's timeout, unless
// ctx ends sooner: the client's own read timeout is lateReplyWait.
func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= r.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.timeout)
}

// isLate reports whether err is a script's refusal to charge past the
// deadline.
func isLate(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "LATE")
}

// gcraScript is Allow on the server. KEYS are the buckets; ARGV[1] is the
// cost, ARGV[2] the deadline in µs on the server's clock (0: none), then
// for each limit its emission interval in microseconds and its burst.
// Past the deadline it changes nothing and returns {-1}. TATs are microseconds since the Unix epoch, kept with full double
// precision (%.17g: Lua's default tostring would round to 14 digits). It
// returns {allowed, limit index, remaining, retry after us, reset after us}.
// Same computation as gcraStep.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local dl = tonumber(ARGV[2])
if dl > 0 and now > dl then return {-1} end
local tats = {}
local best, bestRem, bestReset = -1, 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i + 1])
  local burst = tonumber(ARGV[2 * i + 2])
  local offset = interval * burst
  local tat = tonumber(redis.call('GET', KEYS[i]) or now) or now
  if tat < now then tat = now end
  local newtat = tat + interval * cost
  local diff = now - (newtat - offset)
  if diff < 0 then
    local retry = math.ceil(-diff)
    if cost > burst then retry = -1 end
    local rem = math.floor((now + offset - tat) / interval)
    if rem < 0 then rem = 0 end
    return {0, i - 1, rem, retry, math.ceil(tat - now)}
  end
  local rem = math.floor(diff / interval)
  tats[i] = newtat
  if best < 0 or rem < bestRem then best, bestRem, bestReset = i, rem, newtat - now end
end
if cost > 0 then
  for i = 1, #KEYS do
    local ttl = math.ceil((tats[i] - now) / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('SET', KEYS[i], string.format('%.17g', tats[i]), 'PX', ttl)
  end
end
return {1, best - 1, bestRem, 0, math.ceil(bestReset)}
`)

// bucketKey is limit i's bucket for key: the braces make "@"+key the
// cluster hash tag, so every bucket of one Allow call is in the same slot
// (the "@" keeps the tag non-empty: Redis hashes the whole name for "{}").
func (r *Redis) bucketKey(key string, i int) string {
	return r.prefix + "{@" + key + "}:" + strconv.Itoa(i)
}

// Allow implements Store with one EVALSHA (EVAL when the server does not
// have the script yet, after a restart). With a cost, the call carries
// the caller's deadline and Redis charges nothing when it runs later (the
// call then fails with ErrUnavailable).
func (r *Redis) Allow(ctx context.Context, key string, limits []Limit, cost int) (Decision, error) {
	if err := r.check(); err != nil {
		return Decision{}, err
	}
	if err := checkAllow(limits, cost); err != nil {
		return Decision{}, err
	}
	keys := make([]string, len(limits))
	args := make([]any, 2+2*len(limits))
	args[0], args[1] = cost, 0
	for i, l := range limits {
		keys[i] = r.bucketKey(key, i)
		args[2+2*i] = strconv.FormatFloat(float64(l.Period)/float64(l.Rate)/1e3, 'g', -1, 64)
		args[3+2*i] = l.BurstOrRate()
	}
	var res []int64
	if cost == 0 {
		ctx, cancel := r.bound(ctx)
		defer cancel()
		var err error
		if res, err = gcraScript.Run(ctx, r.client, keys, args...).Int64Slice(); err != nil {
			return Decision{}, r.unavailable(err)
		}
	} else {
		ctx, cancel, deadline, sdl, err := r.charging(ctx, keys[0])
		if err != nil {
			return Decision{}, err
		}
		defer cancel()
		args[1] = sdl
		err = r.charge(ctx, deadline, func(ctx context.Context) (bool, error) {
			v, err := gcraScript.Run(ctx, r.client, keys, args...).Int64Slice()
			if err != nil {
				return false, r.unavailable(err)
			}
			if len(v) == 1 && v[0] == -1 {
				return false, errLate
			}
			res = v
			return len(v) == 5 && v[0] == 1, nil
		}, func(ctx context.Context) error {
			undo := make([]any, 1+len(limits))
			undo[0] = cost
			for i := range limits {
				undo[1+i] = args[2+2*i]
			}
			return ungcraScript.Run(ctx, r.client, keys, undo...).Err()
		})
		if err != nil {
			return Decision{}, err
		}
	}
	if len(res) != 5 {
		return Decision{}, fmt.Errorf("store: redis: allow script returned %d values, want 5", len(res))
	}
	d := Decision{
		Allowed:    res[0] == 1,
		Limit:      int(res[1]),
		Remaining:  int(res[2]),
		RetryAfter: time.Duration(res[3]) * time.Microsecond,
		ResetAfter: time.Duration(res[4]) * time.Microsecond,
	}
	if res[3] < 0 {
		d.RetryAfter = -1
	}
	return d, nil
}

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Scan implements Store with SCAN MATCH on every node (every master of a
// cluster), reading values in pipelined batches.
func (r *Redis) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) bool) error {
	if err := r.check(); err != nil {
		return err
	}
	var nodes []*redis.Client
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		cctx, cancel := r.bound(ctx)
		err := c.ForEachMaster(cctx, func(_ context.Context, n *redis.Client) error {
			mu.Lock()
			nodes = append(nodes, n)
			mu.Unlock()
			return nil
		})
		cancel()
		if err != nil {
			return r.unavailable(err)
		}
	case *redis.Client:
		nodes = []*redis.Client{c}
	default:
		return fmt.Errorf("store: redis: unexpected client %T", r.client)
	}
	match := globEscape(r.prefix+prefix) + "*"
	for _, n := range nodes {
		var cursor uint64
		for {
			cctx, cancel := r.bound(ctx)
			keys, next, err := n.Scan(cctx, cursor, match, 500).Result()
			cancel()
			if err != nil {
				return r.unavailable(err)
			}
			// Allow's buckets are not keys (their names start with "{").
			keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasPrefix(k[len(r.prefix):], "{") })
			if len(keys) > 0 {
				cctx, cancel := r.bound(ctx)
				cmds, err := n.Pipelined(cctx, func(p redis.Pipeliner) error {
					for _, k := range keys {
						p.Get(cctx, k)
					}
					return nil
				})
				cancel()
				if err != nil && !errors.Is(err, redis.Nil) {
					return r.unavailable(err)
				}
				for i, c := range cmds {
					v, err := c.(*redis.StringCmd).Bytes()
					if err != nil { // expired or deleted since SCAN, or not a string
						continue
					}
					if !fn(strings.TrimPrefix(keys[i], r.prefix), v) {
						return nil
					}
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// Publish implements Store with PUBLISH (broadcast to every node of a
// cluster).
func (r *Redis) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := r.check(); err != nil {
		return err
	}
	ch := r.prefix + channel
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if c, ok := r.client.(*redis.ClusterClient); ok {
		// PUBLISH is keyless to go-redis, which sends it to any node; the
		// cluster bus then delivers messages from different nodes in any
		// order. Publishing through the channel's slot owner keeps one
		// publisher's messages in order.
		n, err := c.MasterForKey(ctx, ch)
		if err != nil {
			return r.unavailable(err)
		}
		return r.unavailable(n.Publish(ctx, ch, msg).Err())
	}
	return r.unavailable(r.client.Publish(ctx, ch, msg).Err())
}

// Subscribe implements Store with SUBSCRIBE. It returns once Redis has
// confirmed the subscription. The connection is re-established after an
// outage by go-redis; every confirmation after the first is delivered as
// the resync signal (nil), since messages published meanwhile are lost.
func (r *Redis) Subscribe(ctx context.Context, channel string) (<-chan []byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	ps := r.client.Subscribe(ctx, r.prefix+channel)
	if _, err := ps.Receive(ctx); err != nil { // the first confirmation
		ps.Close()
		return nil, r.unavailable(err)
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		ps.Close()
		return nil, ErrClosed
	}
	r.subs[ps] = struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()

	// Two goroutines: one drains go-redis's channel at once (a full one
	// drops messages without telling anyone), one hands them to the caller
	// at its pace through a queue that signals its own losses.
	in := ps.ChannelWithSubscriptions(redis.WithChannelSize(256))
	out := make(chan []byte)
	q := newSubscriber()
	stop := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(out)
		q.forward(ctx, stop, out)
	}()
	go func() {
		defer r.wg.Done()
		defer func() {
			close(stop)
			r.mu.Lock()
			delete(r.subs, ps)
			r.mu.Unlock()
			ps.Close()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-in:
				if !ok {
					return
				}
				switch v := v.(type) {
				case *redis.Subscription:
					if v.Kind == "subscribe" {
						q.push(nil) // resubscribed after a reconnect
					}
				case *redis.Message:
					q.push(append(make([]byte, 0, len(v.Payload)), v.Payload...))
				}
			}
		}
	}()
	return out, nil
}

// Close implements Store: it ends the subscriptions and closes the
// connections.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return nil
	}
	close(r.stop)
	for ps := range r.subs {
		ps.Close() // closes its channel, which ends the forwarding goroutine
	}
	r.mu.Unlock()
	r.wg.Wait()
	err := r.client.Close() // ends the calls still waiting for a late reply
	r.late.Wait()
	return err
}
