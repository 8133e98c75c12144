package store

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/peertest"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/gatehouse/gatehouse/internal/tlstest"
)

// TestRedisTLSAndACL opens the store from config, as the gateway does,
// against a single Redis and a three-node Redis Cluster that listen with
// TLS only and know the gatehouse user only (the default user is off):
// with the CA and the credentials every kind of call works; without the
// CA, or with a wrong password, nothing does. (Sentinel: TestRedisSentinelFailover.)
func TestRedisTLSAndACL(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "redis test CA")
	// Server and client use: a cluster's bus always asks its peers for a
	// certificate, whatever tls-auth-clients says.
	cert, key := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}).WriteFiles(t, dir, "redis")
	files := redistest.TLSFiles{CA: ca.WriteFile(t, dir, "ca.pem"), Cert: cert, Key: key}
	// The documented least ACL, plus CLUSTER SLOTS for a cluster client.
	acl := []string{"--user", "default", "off", "--user", dataUser, "on", ">" + dataPass, "~gatehouse:*", "&gatehouse:*",
		"+@read", "+@write", "+@scripting", "+@pubsub", "+@connection", "+time", "+cluster|slots"}

	t.Run("single", func(t *testing.T) {
		srv := redistest.StartTLS(t, files, acl...)
		checkTLSACL(t, dir, []string{srv.Addr()})
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a three-node cluster")
		}
		cli := peertest.Debian(t, "redis-cli", "redis-tools")
		var addrs []string
		for range 3 {
			d := t.TempDir()
			// The default user creates the cluster (redis-cli); the
			// gatehouse user only uses it.
			args := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(d, "nodes.conf"),
				"--cluster-node-timeout", "2000", "--tls-cluster", "yes", "--requirepass", nodePass}, acl[3:]...)
			addrs = append(addrs, redistest.StartTLS(t, files, args...).Addr())
		}
		args := append([]string{"--tls", "--cacert", files.CA, "-a", nodePass, "--no-auth-warning", "--cluster", "create"}, addrs...)
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, cli, append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
		}
		waitFor(t, 30*time.Second, "cluster_state:ok", func() bool {
			out, err := exec.Command(cli, "--tls", "--cacert", files.CA, "-a", nodePass, "--no-auth-warning", "-u", "rediss://"+addrs[0], "cluster", "info").CombinedOutput()
			return err == nil && strings.Contains(string(out), "cluster_state:ok")
		})
		checkTLSACL(t, dir, addrs)
	})
}

func checkTLSACL(t *testing.T, dir string, addrs []string) {
	t.Helper()
	ctx := context.Background()
	pw, wrong := config.NewSecret(dataPass), config.NewSecret("wrong")
	open := func(tc *config.UpstreamTLS, pw *config.Secret) Store {
		st, err := Open(config.Store{Type: "redis", Redis: &config.Redis{Addresses: addrs, Username: dataUser, Password: pw,
			TLS: tc, DialTimeout: config.Duration(time.Second)}}, dir, nil)
		must(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	good := open(&config.UpstreamTLS{CAFile: "ca.pem"}, &pw)
	lim := []Limit{{Rate: 2, Period: time.Hour}}
	for i, want := range []bool{true, true, false} {
		d, err := good.Allow(ctx, "k", lim, 1)
		if err != nil || d.Allowed != want {
			t.Fatalf("Allow %d = %+v, %v; want allowed %v", i, d, err, want)
		}
	}
	if n, err := good.IncrBy(ctx, "c", 5, time.Minute); err != nil || n != 5 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	must(t, good.Set(ctx, "s", []byte("v"), time.Minute))
	seen := 0
	must(t, good.Scan(ctx, "", func(string, []byte) bool { seen++; return true }))
	if seen != 2 { // the counter and s
		t.Errorf("Scan saw %d keys, want 2", seen)
	}
	for name, st := range map[string]Store{
		"no CA (system roots)": open(&config.UpstreamTLS{}, &pw),
		"no TLS":               open(nil, &pw),
		"wrong password":       open(&config.UpstreamTLS{CAFile: "ca.pem"}, &wrong),
	} {
		if _, err := st.Allow(ctx, "k", lim, 0); err == nil {
			t.Errorf("%s: Allow succeeded", name)
		}
		if _, err := st.Get(ctx, "s"); err == nil {
			t.Errorf("%s: Get succeeded", name)
		}
	}
}
