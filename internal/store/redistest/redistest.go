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
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
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
	bin := redisServer(t)
	s := &Server{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), dir: t.TempDir(), args: args}
	s.url = "redis://" + s.addr + "/0"
	s.start(bin)
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
	s.start(redisServer(s.t))
}

// start runs redis-server and waits until it answers; callers hold mu or
// own s exclusively.
func (s *Server) start(bin string) {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning"}, s.args...)
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting %s: %v", bin, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := Ping(s.addr); err == nil {
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
