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
	// than one address means a cluster). Required.
	Addrs []string
	// Username and Password authenticate (ACL or requirepass); empty: none.
	Username, Password string
	// DB is the database number (not with a cluster).
	DB int
	// TLS, when set, connects with TLS.
	TLS *tls.Config
	// KeyPrefix is put before every key and channel name, so that several
	// deployments can share one Redis. It must not contain '{' or '}'
	// (they would capture the cluster hash tag). Empty: none.
	KeyPrefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound each step of an
	// operation. Defaults 2s, 500ms, 500ms: a limiter must not hang
	// requests.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections per node. 0: 10 per CPU.
	PoolSize int
}

// Redis is a Store in Redis or Redis Cluster, shared by every gateway
// instance pointing at it. Allow is one server-side Lua script call (one
// round trip) that reads the server's clock, so instances with skewed
// clocks still agree. Failures to reach Redis wrap ErrUnavailable; nothing
// is retried silently (a retried INCRBY could count twice), and the client
// reconnects by itself once Redis is back.
//
// Keys are KeyPrefix+key. Allow's buckets are KeyPrefix+"{@"+key+"}:"+i,
// so that in a cluster all buckets of one call hash to the same slot;
// callers should not use keys starting with "{".
type Redis struct {
	client redis.UniversalClient
	prefix string
	closed atomic.Bool

	mu   sync.Mutex
	subs map[*redis.PubSub]struct{}
	wg   sync.WaitGroup
}

// NewRedis returns a client for opts. It does not connect: the first
// operation does, and a Redis that is down makes operations fail with
// ErrUnavailable rather than the gateway fail to start.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("store: redis: no address")
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("store: redis: key prefix %q must not contain { or }", opts.KeyPrefix)
	}
	if len(opts.Addrs) > 1 && opts.DB != 0 {
		return nil, errors.New("store: redis: a cluster has no databases other than 0")
	}
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        opts.Addrs,
		Username:     opts.Username,
		Password:     opts.Password,
		DB:           opts.DB,
		TLSConfig:    opts.TLS,
		DialTimeout:  def(opts.DialTimeout, 2*time.Second),
		ReadTimeout:  def(opts.ReadTimeout, 500*time.Millisecond),
		WriteTimeout: def(opts.WriteTimeout, 500*time.Millisecond),
		PoolSize:     opts.PoolSize,
		// A request's deadline bounds its store call too.
		ContextTimeoutEnabled: true,
		// No silent retries: a write whose reply was lost may have been
		// applied, and counting twice is worse than reporting the failure.
		MaxRetries: -1,
		// Managed-service maintenance push notifications are not needed
		// and not every server understands the handshake.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Redis{client: client, prefix: opts.KeyPrefix, subs: make(map[*redis.PubSub]struct{})}, nil
}

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
	ok, err := r.client.SetNX(ctx, r.prefix+key, value, redisTTL(ttl)).Result()
	return ok, r.unavailable(err)
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.check(); err != nil {
		return err
	}
	return r.unavailable(r.client.Del(ctx, r.prefix+key).Err())
}

// IncrBy implements Store in one round trip: MULTI, SET key 0 NX PX ttl
// (creates the counter with its expiry only when absent), INCRBY, EXEC.
func (r *Redis) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	k := r.prefix + key
	var incr *redis.IntCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, k, 0, redisTTL(ttl))
		incr = p.IncrBy(ctx, k, n)
		return nil
	})
	if err != nil {
		return 0, r.unavailable(err)
	}
	return incr.Val(), nil
}

// gcraScript is Allow on the server. KEYS are the buckets; ARGV[1] is the
// cost, then for each limit its emission interval in microseconds and its
// burst. TATs are microseconds since the Unix epoch, kept with full double
// precision (%.17g: Lua's default tostring would round to 14 digits). It
// returns {allowed, limit index, remaining, retry after us, reset after us}.
// Same computation as gcraStep.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local tats = {}
local best, bestRem, bestReset = -1, 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
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
// have the script yet, after a restart).
func (r *Redis) Allow(ctx context.Context, key string, limits []Limit, cost int) (Decision, error) {
	if err := r.check(); err != nil {
		return Decision{}, err
	}
	if err := checkAllow(limits, cost); err != nil {
		return Decision{}, err
	}
	keys := make([]string, len(limits))
	args := make([]any, 1+2*len(limits))
	args[0] = cost
	for i, l := range limits {
		keys[i] = r.bucketKey(key, i)
		args[1+2*i] = strconv.FormatFloat(float64(l.Period)/float64(l.Rate)/1e3, 'g', -1, 64)
		args[2+2*i] = l.BurstOrRate()
	}
	res, err := gcraScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return Decision{}, r.unavailable(err)
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
		err := c.ForEachMaster(ctx, func(_ context.Context, n *redis.Client) error {
			mu.Lock()
			nodes = append(nodes, n)
			mu.Unlock()
			return nil
		})
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
			keys, next, err := n.Scan(ctx, cursor, match, 500).Result()
			if err != nil {
				return r.unavailable(err)
			}
			// Allow's buckets are not keys (their names start with "{").
			keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasPrefix(k[len(r.prefix):], "{") })
			if len(keys) > 0 {
				cmds, err := n.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, k := range keys {
						p.Get(ctx, k)
					}
					return nil
				})
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
	for ps := range r.subs {
		ps.Close() // closes its channel, which ends the forwarding goroutine
	}
	r.mu.Unlock()
	r.wg.Wait()
	return r.client.Close()
}
