// Package redistest gives tests a real Redis: the one REDIS_URL names, or
// a redis-server of their own on a free loopback port, killed when the
// test ends.
//
//	srv := redistest.Start(t)
//	st, _ := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: t.Name() + ":"})
//	srv.Stop()    // Redis is down: operations fail with store.ErrUnavailable
//	srv.Restart() // back on the same port, empty
//
// redis-server is taken from PATH; when missing and running as root, the
// Debian package is installed with apt-get. If neither works the test is
// skipped, saying why. A server started here keeps nothing on disk
// (--save "" --appendonly no) and lives in the test's temporary directory.
package redistest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peertest"
)

// Server is a Redis for one test.
type Server struct {
	t    testing.TB
	addr string
	url  string
	dir  string
	args []string // extra redis-server arguments

	bin      string      // redis-server, or redis-sentinel
	conf     string      // a sentinel's config file (it rewrites it)
	tlsFiles *TLSFiles   // listen with TLS only
	tlsCli   *tls.Config // to PING a TLS server

	mu  sync.Mutex
	cmd *exec.Cmd // nil: external (REDIS_URL) or stopped
}

// Start returns a running Redis. With REDIS_URL set (redis://host:port/db)
// that server is used, shared with whatever else uses it: use a key prefix
// of your own, and expect Stop and Restart to skip the test.
func Start(t testing.TB) *Server { return StartWith(t) }

// StartWith is Start with extra redis-server arguments for a server of our
// own (like "--cluster-enabled", "yes"); REDIS_URL is not used.
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" && len(args) == 0 {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			t.Fatalf("redistest: REDIS_URL %q: want redis://host:port", u)
		}
		return &Server{t: t, addr: p.Host, url: u}
	}
	return startNew(t, &Server{bin: redisServer(t), args: args})
}

// TLSFiles are PEM files for a server listening with TLS only: its
// certificate and key, and the CA it and its own connections (a
// replica's to its master, a sentinel's to the data nodes) trust. Client
// certificates are not asked for (tls-auth-clients no): clients
// authenticate with ACL users.
type TLSFiles struct {
	CA, Cert, Key string
}

// StartTLS is StartWith for a server that listens with TLS only, on
// Addr, and replicates over TLS.
func StartTLS(t testing.TB, files TLSFiles, args ...string) *Server {
	t.Helper()
	return startNew(t, &Server{bin: redisServer(t), args: args, tlsFiles: &files})
}

// Sentinel configures StartSentinel.
type Sentinel struct {
	// MasterName, MasterAddr and Quorum are the "sentinel monitor" line.
	MasterName, MasterAddr string
	Quorum                 int
	// Lines are more lines of sentinel.conf (auth-pass, down-after-
	// milliseconds, user, requirepass...).
	Lines []string
	// TLS, when set, makes the sentinel listen with TLS only and talk
	// TLS to the data nodes and the other sentinels.
	TLS *TLSFiles
}

// StartSentinel starts a Redis Sentinel (Debian's redis-sentinel,
// installed when missing) on a free loopback port, killed when the test
// ends. It returns once the sentinel answers.
func StartSentinel(t testing.TB, c Sentinel) *Server {
	t.Helper()
	bin := peertest.Debian(t, "redis-sentinel", "redis-sentinel")
	if bin == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.MasterAddr)
	if err != nil {
		t.Fatalf("redistest: master address %q: %v", c.MasterAddr, err)
	}
	lines := append([]string{
		"sentinel monitor " + c.MasterName + " " + host + " " + port + " " + strconv.Itoa(c.Quorum),
	}, c.Lines...)
	return startNew(t, &Server{bin: bin, args: lines, conf: "sentinel.conf", tlsFiles: c.TLS})
}

func startNew(t testing.TB, s *Server) *Server {
	t.Helper()
	s.t, s.dir = t, t.TempDir()
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	s.url = "redis://" + s.addr + "/0"
	if s.tlsFiles != nil {
		s.url = "rediss://" + s.addr + "/0"
		pem, err := os.ReadFile(s.tlsFiles.CA)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		s.tlsCli = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	s.start(s.bin)
	t.Cleanup(s.Stop)
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns redis://host:port/db.
func (s *Server) URL() string { return s.url }

// Stop kills the server (by its PID) and waits for it to exit. It is safe
// to call twice; a stopped server can be restarted.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		s.t.Skip("redistest: cannot stop the external Redis of REDIS_URL")
	}
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server if it runs and starts an empty one on the same
// port, returning once it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start(s.bin)
}

// start runs redis-server and waits until it answers; callers hold mu or
// own s exclusively.
func (s *Server) start(bin string) {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	listen := []string{"port " + port}
	if f := s.tlsFiles; f != nil {
		listen = []string{"port 0", "tls-port " + port, "tls-cert-file " + f.Cert, "tls-key-file " + f.Key,
			"tls-ca-cert-file " + f.CA, "tls-auth-clients no", "tls-replication yes"}
	}
	var args []string
	if s.conf != "" {
		// A sentinel: everything in its config file, which it rewrites.
		conf := filepath.Join(s.dir, s.conf)
		if _, err := os.Stat(conf); err != nil {
			lines := append(append(listen, "bind 127.0.0.1", "daemonize no", "loglevel warning", "dir "+s.dir), s.args...)
			if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				s.t.Fatalf("redistest: %v", err)
			}
		}
		args = []string{conf}
	} else {
		for _, l := range listen {
			k, v, _ := strings.Cut(l, " ")
			args = append(args, "--"+k, v)
		}
		args = append(append(args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning"), s.args...)
	}
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting %s: %v", bin, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := answers(s.addr, s.tlsCli); err == nil {
			s.cmd = cmd
			return
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			s.t.Fatalf("redistest: redis-server on %s did not answer PING within 10s:\n%s", s.addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ping sends PING to addr and reports an error unless it answers PONG.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redistest: PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// answers reports whether the server at addr answers a PING, as PONG or
// by asking for authentication.
func answers(addr string, tc *tls.Config) error {
	if tc == nil {
		err := Ping(addr)
		if err != nil && strings.Contains(err.Error(), "NOAUTH") {
			return nil
		}
		return err
	}
	d := &net.Dialer{Timeout: time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
		return fmt.Errorf("redistest: PING answered %q", l)
	}
	return nil
}

// redisServer finds redis-server, installing Debian's package once per
// test binary when it is missing and we are root; otherwise the peer is
// unavailable (a loud skip, a failure under CI=true).
func redisServer(t testing.TB) string {
	t.Helper()
	return peertest.Debian(t, "redis-server", "redis-server")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
