package faulttest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// badUpstream is a raw TCP upstream on a fixed loopback address whose
// behaviour is switched by the test. It can also go away (its listener
// closed: connection refused) and come back on the same address.
type badUpstream struct {
	t    *testing.T
	addr string
	mode atomic.Value // string

	mu    sync.Mutex
	ln    net.Listener
	open  map[net.Conn]bool
	conns sync.WaitGroup
	quit  chan struct{}
}

func newBadUpstream(t *testing.T) *badUpstream {
	u := &badUpstream{t: t, quit: make(chan struct{}), open: map[net.Conn]bool{}}
	u.mode.Store("ok")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	t.Cleanup(func() {
		close(u.quit)
		u.down()
		u.conns.Wait()
	})
	return u
}

func (u *badUpstream) set(mode string) { u.mode.Store(mode) }

// down is the upstream process gone: the listener and every open
// connection are closed, new connections are refused.
func (u *badUpstream) down() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ln != nil {
		u.ln.Close()
		u.ln = nil
	}
	for c := range u.open {
		c.Close()
	}
}

// up listens again on the same address.
func (u *badUpstream) up() {
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		u.t.Skipf("cannot listen on %s again: %v", u.addr, err)
	}
	u.serve(ln)
}

func (u *badUpstream) serve(ln net.Listener) {
	u.mu.Lock()
	u.ln = ln
	u.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			u.mu.Lock()
			u.open[c] = true
			u.mu.Unlock()
			go func() {
				defer u.conns.Done()
				defer func() {
					u.mu.Lock()
					delete(u.open, c)
					u.mu.Unlock()
					c.Close()
				}()
				u.handle(c.(*net.TCPConn))
			}()
		}
	}()
}

func (u *badUpstream) handle(c *net.TCPConn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		switch u.mode.Load().(string) {
		case "ok":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
		case "slow":
			// Never answers; waits for the gateway to give up (or the
			// test to end).
			select {
			case <-u.quit:
			case <-time.After(10 * time.Second):
			}
			return
		case "reset":
			c.SetLinger(0) // close with RST
			return
		case "midreset":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst ten.")
			time.Sleep(20 * time.Millisecond)
			c.SetLinger(0)
			return
		case "garbage":
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")
			return
		case "badstatus":
			io.WriteString(c, "HTTP/1.1 2000 Whatever\r\nContent-Length: 0\r\n\r\n")
			return
		}
	}
}

// TestUpstreamFaults: each way an upstream fails is answered with the
// documented status and code, counted under its kind, and the next
// request after the upstream is well again succeeds, without a restart.
func TestUpstreamFaults(t *testing.T) {
	up := newBadUpstream(t)
	g := startGateway(t, `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
routes:
  - name: up
    match: {path_prefix: /}
    upstream: {url: "http://${UP}", timeout: 300ms, connect_timeout: 1s}
  - name: up-soap
    soap: "1.1"
    match: {path: /soap}
    upstream: {url: "http://${UP}", timeout: 300ms}
`, map[string]string{"UP": up.addr}, options{})

	get(t, g.base+"/").want(t, "healthy upstream", 200, "")
	for _, tc := range []struct {
		fault  string
		status int
		code   string
		kind   string // gatehouse_upstream_errors_total kind
	}{
		{"down", 502, "upstream_unavailable", "connect"},
		{"slow", 504, "upstream_timeout", "timeout"},
		{"reset", 502, "upstream_unavailable", "reset"},
		{"garbage", 502, "upstream_protocol_error", "protocol"},
		{"badstatus", 502, "upstream_protocol_error", "protocol"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			before := metricValue(t, g.metrics, "gatehouse_upstream_errors_total", "route", "up", "kind", tc.kind)
			if tc.fault == "down" {
				up.down()
			} else {
				up.set(tc.fault)
			}
			t0 := time.Now()
			r := get(t, g.base+"/x")
			r.want(t, tc.fault, tc.status, tc.code)
			if took := time.Since(t0); took > 2*time.Second {
				t.Errorf("the failure took %v to answer", took)
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("a gateway error without X-Request-Id")
			}
			if got := metricValue(t, g.metrics, "gatehouse_upstream_errors_total", "route", "up", "kind", tc.kind); got != before+1 {
				t.Errorf("gatehouse_upstream_errors_total{kind=%q}: got %v, want %v", tc.kind, got, before+1)
			}
			// SOAP routes say the same as a Fault.
			req, _ := http.NewRequest(http.MethodPost, g.base+"/soap", nil)
			if sr, err := send(req); err != nil || sr.status != tc.status || !contains(sr.body, "Fault") || !contains(sr.body, tc.code) {
				t.Errorf("SOAP route: got %d %q %v, want %d and a Fault naming %s", sr.status, sr.body, err, tc.status, tc.code)
			}
			// Recovery: the upstream is well again, so is the route.
			if tc.fault == "down" {
				up.up()
			}
			up.set("ok")
			get(t, g.base+"/x").want(t, "after "+tc.fault, 200, "")
		})
	}

	t.Run("reset mid-response", func(t *testing.T) {
		up.set("midreset")
		// The upstream's 200 had begun: it cannot be turned into a 502.
		// The client must see the connection cut (before the status line
		// if the gateway had not flushed it yet, or a truncated body),
		// never a complete-looking response.
		resp, err := client.Get(g.base + "/x")
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Errorf("got %d, %q, %v; want the body cut short (io.ErrUnexpectedEOF)", resp.StatusCode, b, rerr)
			}
		}
		up.set("ok")
		get(t, g.base+"/x").want(t, "after a reset mid-response", 200, "")
	})

	// Every failure above is in the access log as an error with a cause;
	// no upstream failure logs as allowed.
	for _, l := range lines(g.access.String(), `"status":50`) {
		if !contains(l, `"decision":"error"`) || !contains(l, `"cause":`) {
			t.Errorf("access log line of a gateway error: %s", l)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
