package store

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
	"github.com/redis/go-redis/v9"
)

// sentinelSetup is a master, a replica and three sentinels, with ACL
// users: "gatehouse" on the data nodes, "gsent" on the sentinels (the
// default users are for replication and the sentinels' own links), and
// optionally TLS everywhere.
type sentinelSetup struct {
	master, replica *redistest.Server
	sentinels       []*redistest.Server
	tls             *tls.Config
}

const (
	sentinelMaster = "gh-master"
	nodePass       = "node-secret"
	dataUser       = "gatehouse"
	dataPass       = "gatehouse-secret"
	sentUser       = "gsent"
	sentPass       = "sentinel-secret"
)

func startSentinelSetup(t *testing.T, useTLS bool) *sentinelSetup {
	t.Helper()
	var files *redistest.TLSFiles
	su := &sentinelSetup{}
	if useTLS {
		dir := t.TempDir()
		ca := tlstest.NewCA(t, "redis test CA")
		cert, key := ca.Server(t).WriteFiles(t, dir, "redis")
		files = &redistest.TLSFiles{CA: ca.WriteFile(t, dir, "ca.pem"), Cert: cert, Key: key}
		su.tls = &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	start := func(args ...string) *redistest.Server {
		args = append([]string{"--requirepass", nodePass, "--masterauth", nodePass,
			"--user", dataUser, "on", ">" + dataPass, "~sentinel:*", "&sentinel:*", "+@read", "+@write", "+@scripting", "+@pubsub", "+@connection", "+time"}, args...)
		if files != nil {
			return redistest.StartTLS(t, *files, args...)
		}
		return redistest.StartWith(t, args...)
	}
	su.master = start()
	host, port, _ := net.SplitHostPort(su.master.Addr())
	su.replica = start("--replicaof", host, port)
	for range 3 {
		su.sentinels = append(su.sentinels, redistest.StartSentinel(t, redistest.Sentinel{
			MasterName: sentinelMaster, MasterAddr: su.master.Addr(), Quorum: 2, TLS: files,
			Lines: []string{
				"sentinel down-after-milliseconds " + sentinelMaster + " 1000",
				"sentinel failover-timeout " + sentinelMaster + " 5000",
				"sentinel parallel-syncs " + sentinelMaster + " 1",
				"sentinel auth-pass " + sentinelMaster + " " + nodePass,
				"user default off",
				"user " + sentUser + " on >" + sentPass + " ~* &* +@all",
				"sentinel sentinel-user " + sentUser,
				"sentinel sentinel-pass " + sentPass,
			},
		}))
	}
	ctx := context.Background()
	replica := redis.NewClient(&redis.Options{Addr: su.replica.Addr(), Password: nodePass, TLSConfig: su.tls, MaxRetries: -1})
	defer replica.Close()
	waitFor(t, 30*time.Second, "the replica to sync", func() bool {
		info, err := replica.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	// Each sentinel must know the replica and the two other sentinels
	// before the master dies, or it cannot fail over.
	for _, s := range su.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), Username: sentUser, Password: sentPass, TLSConfig: su.tls, MaxRetries: -1})
		waitFor(t, 60*time.Second, "sentinel "+s.Addr()+" to know the replica and the other sentinels", func() bool {
			m, err := sc.Master(ctx, sentinelMaster).Result()
			return err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2"
		})
		sc.Close()
	}
	return su
}

func (su *sentinelSetup) options(sentinelPass, pass string) RedisOptions {
	addrs := make([]string, len(su.sentinels))
	for i, s := range su.sentinels {
		addrs[i] = s.Addr()
	}
	return RedisOptions{
		Sentinel: &SentinelOptions{MasterName: sentinelMaster, Addrs: addrs, Username: sentUser, Password: sentinelPass},
		Username: dataUser, Password: pass, TLS: su.tls, KeyPrefix: "sentinel:",
		DialTimeout: 500 * time.Millisecond,
	}
}

// TestRedisSentinelFailover runs a limit against a Sentinel-managed
// master (ACL users on the data nodes and, separately, on the sentinels;
// then the same with TLS everywhere), kills the master under load, and
// shows the limit continuing on the promoted replica: the store goes down
// once and up once, and the bucket ends up charged what was admitted,
// give or take the calls in flight when the master died (GCRA state the
// asynchronous replica had not received, or charges whose replies were
// lost with the master). The failover window and the loss are logged.
func TestRedisSentinelFailover(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "acl"
		if useTLS {
			name = "tls+acl"
		}
		t.Run(name, func(t *testing.T) { sentinelFailover(t, useTLS) })
	}
}

func sentinelFailover(t *testing.T, useTLS bool) {
	su := startSentinelSetup(t, useTLS)
	ctx := context.Background()
	lim := []Limit{{Rate: 1000, Period: 24 * time.Hour * 1000}} // no refill to speak of
	const workers = 8

	// The credentials are checked: a wrong sentinel password or a wrong
	// data password gets nowhere.
	for _, o := range []RedisOptions{su.options("wrong", dataPass), su.options(sentPass, "wrong")} {
		st, err := NewRedis(o)
		must(t, err)
		if _, err := st.Allow(ctx, "probe", lim, 0); err == nil {
			t.Errorf("with sentinel password %q and data password %q, Allow succeeded", o.Sentinel.Password, o.Password)
		}
		st.Close()
	}

	raw, err := NewRedis(su.options(sentPass, dataPass))
	must(t, err)
	var mu sync.Mutex
	var changes []string
	st := Guard(raw, HealthOptions{OnChange: func(up bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, strconv.FormatBool(up)+" "+time.Now().Format("15:04:05.000"))
	}})
	defer st.Close()

	d, err := st.Allow(ctx, "k", lim, 0)
	if err != nil || !d.Allowed {
		t.Fatalf("before the failover: Allow = %+v, %v", d, err)
	}
	var admitted, refused atomic.Int64
	var killed atomic.Int64 // unix nanos of the kill; 0 before
	var firstAfter atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	// gate lets the test hold the load for the moment it takes to make
	// the replica catch up before the kill (see below).
	var gate sync.RWMutex
	defer func() { stop.Store(true); wg.Wait() }() // before st.Close, on failures too
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				began := time.Now().UnixNano()
				gate.RLock()
				d, err := st.Allow(ctx, "k", lim, 1)
				gate.RUnlock()
				switch {
				case err != nil:
					if !errors.Is(err, ErrUnavailable) {
						t.Errorf("Allow: %v, want ErrUnavailable or nothing", err)
					}
					time.Sleep(5 * time.Millisecond)
				case d.Allowed:
					admitted.Add(1)
					if k := killed.Load(); k != 0 && began > k {
						firstAfter.CompareAndSwap(0, time.Now().UnixNano())
					}
				default:
					refused.Add(1)
				}
			}
		})
	}
	waitFor(t, 30*time.Second, "300 units admitted", func() bool { return admitted.Load() >= 300 })
	// Replication is asynchronous: what the replica has not received when
	// the master dies is lost, however many writes that is (on a loaded
	// machine it was hundreds). To measure what the failover itself
	// loses, the load is held while WAIT makes the replica catch up, and
	// the master is killed as the load resumes: what is lost then is the
	// calls in flight around the kill.
	gate.Lock()
	direct := redis.NewClient(&redis.Options{Addr: su.master.Addr(), Username: dataUser, Password: dataPass, TLSConfig: su.tls})
	if n, err := direct.Wait(ctx, 1, 30*time.Second).Result(); err != nil || n < 1 {
		gate.Unlock()
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}
	direct.Close()
	gate.Unlock()
	killed.Store(time.Now().UnixNano())
	atKill := admitted.Load()
	su.master.Stop()

	waitFor(t, 90*time.Second, "the limit to be decided again after the failover", func() bool { return firstAfter.Load() != 0 })
	waitFor(t, 90*time.Second, "the store to be up again", func() bool { _, ups := st.Transitions(); return ups >= 1 })
	waitFor(t, 90*time.Second, "the limit to refuse", func() bool { return refused.Load() > 0 })
	stop.Store(true)
	wg.Wait()

	window := time.Duration(firstAfter.Load() - killed.Load())
	loss := admitted.Load() - int64(lim[0].Rate)
	downs, ups := st.Transitions()
	mu.Lock()
	t.Logf("killed the master after %d admitted; first decision after the kill %v later; admitted %d of %d (loss %+d units); transitions %v",
		atKill, window.Round(time.Millisecond), admitted.Load(), lim[0].Rate, loss, changes)
	mu.Unlock()
	if downs != 1 || ups != 1 {
		t.Errorf("the store went down %d and up %d times, want once each", downs, ups)
	}
	if loss < -2*workers || loss > 2*workers {
		t.Errorf("admitted %d against a burst of %d: the failover lost or added %d units, want at most about the %d calls in flight around the kill", admitted.Load(), lim[0].Rate, loss, workers)
	}
	// The promoted replica is the master now.
	sc := redis.NewSentinelClient(&redis.Options{Addr: su.sentinels[0].Addr(), Username: sentUser, Password: sentPass, TLSConfig: su.tls})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(ctx, sentinelMaster).Result()
	must(t, err)
	if net.JoinHostPort(addr[0], addr[1]) != su.replica.Addr() {
		t.Errorf("sentinels name %v as master, want the replica %s", addr, su.replica.Addr())
	}
}
