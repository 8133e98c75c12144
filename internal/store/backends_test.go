package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/peertest"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/redis/go-redis/v9"
)

func TestMemorySweepBoundsGarbage(t *testing.T) {
	c := newFakeClock()
	m := NewMemory(c.Now)
	defer m.Close()
	ctx := context.Background()
	for i := range 10000 {
		must(t, m.Set(ctx, "old:"+strconv.Itoa(i), []byte("v"), time.Second))
	}
	c.Add(2 * time.Second)
	// Writes of other keys sweep the expired ones without anyone reading
	// them: 20000 writes sample 160000 entries, far more than needed.
	for i := range 20000 {
		must(t, m.Set(ctx, "new:"+strconv.Itoa(i%100), []byte("v"), 0))
	}
	n := 0
	for i := range m.shards {
		n += len(m.shards[i].kv)
	}
	if n > 200 {
		t.Fatalf("%d entries left after sweeping, want at most 200 (100 live)", n)
	}
}

func TestFileSurvivesRestart(t *testing.T) {
	c := newFakeClock()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	f, err := OpenFile(path, c.Now)
	must(t, err)
	lim := []Limit{{Rate: 3, Period: time.Hour}}
	for range 3 {
		if d, err := f.Allow(ctx, "rl", lim, 1); err != nil || !d.Allowed {
			t.Fatalf("Allow = %+v, %v", d, err)
		}
	}
	incr(t, f, "quota", 41, time.Hour, 41)
	must(t, f.Set(ctx, "revoked:abc", []byte("1"), time.Hour))
	must(t, f.Set(ctx, "revoked:short", []byte("1"), time.Minute))
	must(t, f.Close())

	c.Add(10 * time.Minute) // half of one unit's 20 minutes
	f, err = OpenFile(path, c.Now)
	must(t, err)
	defer f.Close()
	if d, err := f.Allow(ctx, "rl", lim, 1); err != nil || d.Allowed {
		t.Errorf("Allow after restart = %+v, %v; want refused: the bucket survived", d, err)
	}
	incr(t, f, "quota", 1, time.Hour, 42)
	var revoked []string
	must(t, f.Scan(ctx, "revoked:", func(k string, _ []byte) bool { revoked = append(revoked, k); return true }))
	if fmt.Sprint(revoked) != "[revoked:abc]" {
		t.Errorf("revocations after restart: %v, want [revoked:abc] (the other expired)", revoked)
	}
}

// TestFileLockedByOtherProcess runs this test binary as a helper process
// that holds the file, and checks that opening it fails fast and says so.
func TestFileLockedByOtherProcess(t *testing.T) {
	if p := os.Getenv("STORE_HOLD_FILE"); p != "" {
		f, err := OpenFile(p, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		defer f.Close()
		fmt.Println("holding")
		var b [1]byte
		os.Stdin.Read(b[:]) // until the parent closes stdin
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileLockedByOtherProcess$")
	cmd.Env = append(os.Environ(), "STORE_HOLD_FILE="+path)
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	if !strings.Contains(string(buf[:n]), "holding") {
		t.Fatalf("helper said %q", buf[:n])
	}
	start := time.Now()
	_, err = OpenFile(path, nil)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("OpenFile on a held file: err = %v, want \"in use by another process\"", err)
	}
	if took := time.Since(start); took > 5*lockTimeout {
		t.Errorf("failing took %v, want about %v", took, lockTimeout)
	}
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	st, err := NewRedis(RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: "outage:", DialTimeout: 200 * time.Millisecond})
	must(t, err)
	defer st.Close()
	ctx := context.Background()
	lim := []Limit{{Rate: 10, Period: time.Hour}}
	sub, err := st.Subscribe(ctx, "revocations")
	must(t, err)
	if _, err := st.Allow(ctx, "k", lim, 1); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if _, err := st.Allow(ctx, "k", lim, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Allow while down: err = %v, want ErrUnavailable", err)
	}
	if _, err := st.IncrBy(ctx, "c", 1, time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Errorf("IncrBy while down: err = %v, want ErrUnavailable", err)
	}
	if _, err := st.SetNX(ctx, "n", nil, time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Errorf("SetNX while down: err = %v, want ErrUnavailable", err)
	}
	if err := st.Scan(ctx, "", func(string, []byte) bool { return true }); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Scan while down: err = %v, want ErrUnavailable", err)
	}

	srv.Restart() // empty, and without our script
	var d Decision
	for i := range 3 { // the pool may hand out one dead connection per slot
		if d, err = st.Allow(ctx, "k", lim, 1); err == nil {
			break
		}
		t.Logf("Allow #%d after restart: %v", i, err)
	}
	if err != nil || !d.Allowed || d.Remaining != 9 {
		t.Fatalf("Allow after restart = %+v, %v; want allowed, 9 remaining (state was lost with the server)", d, err)
	}
	incr(t, st, "c", 1, time.Minute, 1)

	// The subscription comes back by itself and says so with a nil, then
	// delivers again.
	select {
	case m, ok := <-sub:
		if !ok || m != nil {
			t.Fatalf("first receive after the outage = %q, %v; want the nil resync signal", m, ok)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no resync signal within 60s of Redis coming back")
	}
	must(t, st.Publish(ctx, "revocations", []byte("jti-1")))
	if got := receive(t, sub); string(got) != "jti-1" {
		t.Fatalf("after resync got %q, want jti-1", got)
	}
}

func TestRedisRoundTripsAndServerState(t *testing.T) {
	srv := redistest.Start(t)
	st, err := NewRedis(RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: "rt:"})
	must(t, err)
	defer st.Close()
	hook := &countHook{}
	st.client.AddHook(hook)
	ctx := context.Background()
	lim := []Limit{{Rate: 10, Period: time.Hour}, {Rate: 100, Period: 24 * time.Hour}}
	// Warm up: the first Allow loads the script (EVALSHA, then EVAL), and
	// new connections say HELLO; neither happens per call.
	if _, err := st.Allow(ctx, "k", lim, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IncrBy(ctx, "c", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	hook.n.Store(0)
	for range 10 {
		if _, err := st.Allow(ctx, "k", lim, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := st.IncrBy(ctx, "c", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := hook.n.Load(); got != 20 {
		t.Errorf("10 Allow + 10 IncrBy took %d round trips, want 20", got)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	// Both buckets share the hash tag, and carry an expiry.
	for i := range 2 {
		k := "rt:{@k}:" + strconv.Itoa(i)
		if ttl := raw.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("bucket %s has TTL %v, want one", k, ttl)
		}
	}
	if ttl := raw.PTTL(ctx, "rt:c").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("counter TTL %v, want within a minute", ttl)
	}
}

func TestRedisKeyHashing(t *testing.T) {
	st, err := NewRedis(RedisOptions{Addrs: []string{"127.0.0.1:1"}, KeyPrefix: "gh:"})
	must(t, err)
	defer st.Close()
	for _, key := range []string{"rl:route:1.2.3.4", "weird}key{", "", "{x}"} {
		slot := hashSlot(st.bucketKey(key, 0))
		for i := 1; i < 4; i++ {
			if got := hashSlot(st.bucketKey(key, i)); got != slot {
				t.Errorf("key %q: bucket %d in slot %d, bucket 0 in %d", key, i, got, slot)
			}
		}
	}
	if _, err := NewRedis(RedisOptions{Addrs: []string{"a:1"}, KeyPrefix: "{x}"}); err == nil {
		t.Error("a prefix with braces was accepted")
	}
}

// hashSlot is Redis Cluster's key slot (CRC16 of the hash tag mod 16384),
// written from the cluster specification.
func hashSlot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// TestRedisCluster runs the conformance suite against a three-node Redis
// Cluster on loopback: Allow's buckets must share a slot (or the script
// fails with CROSSSLOT), Scan must visit every master.
func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	cli := peertest.Debian(t, "redis-cli", "redis-tools")
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		s := redistest.StartWith(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000")
		addrs = append(addrs, s.Addr())
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c := redis.NewClient(&redis.Options{Addr: addrs[0]})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.ClusterInfo(context.Background()).Val(), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatal("cluster not ok within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Close()
	runConformance(t, redisHarness("cluster", func(*testing.T) []string { return addrs }))

	// Keys spread over the masters, and Scan finds them all.
	st, err := NewRedis(RedisOptions{Addrs: addrs, KeyPrefix: "spread:"})
	must(t, err)
	defer st.Close()
	ctx := context.Background()
	for i := range 100 {
		must(t, st.Set(ctx, "k"+strconv.Itoa(i), []byte("v"), time.Minute))
	}
	n := 0
	must(t, st.Scan(ctx, "", func(string, []byte) bool { n++; return true }))
	if n != 100 {
		t.Errorf("Scan over the cluster visited %d keys, want 100", n)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(config.Store{}, dir, nil)
	must(t, err)
	if f, ok := st.(*File); !ok || f.Path() != filepath.Join(dir, DefaultPath) {
		t.Errorf("default store = %T at %v, want the file store at %s", st, st, filepath.Join(dir, DefaultPath))
	}
	st.Close()
	abs := filepath.Join(t.TempDir(), "abs.db")
	st, err = Open(config.Store{Type: "file", Path: abs}, dir, nil)
	must(t, err)
	if f := st.(*File); f.Path() != abs {
		t.Errorf("absolute path opened at %s", f.Path())
	}
	st.Close()
	st, err = Open(config.Store{Type: "memory"}, dir, nil)
	must(t, err)
	if _, ok := st.(*Memory); !ok {
		t.Errorf("memory store = %T", st)
	}
	st.Close()

	srv := redistest.Start(t)
	pw := config.NewSecret("")
	st, err = Open(config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{srv.Addr()}, Password: &pw}}, dir, nil)
	must(t, err)
	defer st.Close()
	r := st.(*Redis)
	if r.prefix != DefaultKeyPrefix {
		t.Errorf("prefix %q, want %q", r.prefix, DefaultKeyPrefix)
	}
	must(t, r.Set(context.Background(), "k", []byte("v"), time.Minute))
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	if v := raw.Get(context.Background(), DefaultKeyPrefix+"k").Val(); v != "v" {
		t.Errorf("raw GET of the prefixed key = %q, want v", v)
	}

	bad := []struct {
		cfg   config.Store
		field string
	}{
		{config.Store{Type: "nope"}, "type"},
		{config.Store{Type: "redis"}, "redis"},
		{config.Store{Type: "file", Redis: &config.Redis{}}, "redis"},
		{config.Store{Type: "redis", Redis: &config.Redis{}}, "redis.addresses"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1", "b:x"}}}, "redis.addresses[1]"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1"}, PoolSize: -1}}, "redis.pool_size"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1"}, ReadTimeout: -1}}, "redis.read_timeout"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1"}, TLS: &config.UpstreamTLS{CAFile: "missing.pem"}}}, "redis.tls.ca_file"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1"}, TLS: &config.UpstreamTLS{CertFile: "c.pem"}}}, "redis.tls.cert_file"},
		{config.Store{Type: "file", Path: filepath.Join(dir, "no", "such", "dir", "x.db")}, "path"},
		{config.Store{Type: "redis", Redis: &config.Redis{Sentinel: &config.RedisSentinel{Addresses: []string{"s:1"}}}}, "redis.sentinel.master_name"},
		{config.Store{Type: "redis", Redis: &config.Redis{Sentinel: &config.RedisSentinel{MasterName: "m"}}}, "redis.sentinel.addresses"},
		{config.Store{Type: "redis", Redis: &config.Redis{Sentinel: &config.RedisSentinel{MasterName: "m", Addresses: []string{"s:1", "s"}}}}, "redis.sentinel.addresses[1]"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1"}, Sentinel: &config.RedisSentinel{MasterName: "m", Addresses: []string{"s:1"}}}}, "redis.addresses"},
		{config.Store{Type: "redis", Redis: &config.Redis{Sentinel: &config.RedisSentinel{MasterName: "m", Addresses: []string{"s:1"}, Username: "u"}}}, "redis.sentinel.password"},
		{config.Store{Type: "redis", Redis: &config.Redis{Addresses: []string{"a:1"}, Username: "u"}}, "redis.password"},
	}
	for _, tc := range bad {
		_, err := Open(tc.cfg, dir, nil)
		fe, ok := errors.AsType[*FieldError](err)
		if !ok || fe.Field != tc.field {
			t.Errorf("Open(%+v) err = %v, want a FieldError on %s", tc.cfg, err, tc.field)
		}
	}
}

// countHook counts round trips: one per command, one per pipeline.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRedisExactAcrossInstances is two gateways' clients sharing one
// Redis: 2 x 200 concurrent Allow calls against 100 per hour.
func TestRedisExactAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	lim := []Limit{{Rate: 100, Period: time.Hour}}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		// Generous timeouts: 400 calls queue for 2 x 20 pooled connections,
		// and on a loaded machine the default 500ms budget can run out
		// while a call waits for one; this test is about exact counting.
		st, err := NewRedis(RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: "two:",
			DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
		must(t, err)
		defer st.Close()
		for range 200 {
			wg.Go(func() {
				d, err := st.Allow(context.Background(), "shared", lim, 1)
				if err != nil {
					t.Error(err)
				} else if d.Allowed {
					allowed.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Fatalf("two instances allowed %d of 400, want exactly 100", got)
	}
}
