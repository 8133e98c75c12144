//go:build unix

package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func newSendWait(t *testing.T, nc net.Conn) (*sendWait, *bufio.Writer) {
	t.Helper()
	bw := bufio.NewWriter(nc)
	var sw sendWait
	sw.init(nc, bw)
	if !sw.arm() {
		t.Fatal("a TCP connection has raw access: arm must succeed")
	}
	sw.armed = false
	return &sw, bw
}

// TestSendWaitAnswers sends many requests to a peer that answers each at
// once, each sent by the read that waits for its answer. The answer may come
// before the read waits; a wake-up the read missed would leave it waiting
// with no deadline, which the watchdog turns into a failure.
func TestSendWaitAnswers(t *testing.T) {
	client, server := tcpPair(t)
	sw, bw := newSendWait(t, client)
	go func() {
		br := bufio.NewReader(server)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(server, "re "+line); err != nil {
				return
			}
		}
	}()
	// For the first requests the answer has come, and the poller has seen
	// it, before the read waits.
	var paused int
	afterSend = func() {
		if paused < 200 {
			paused++
			time.Sleep(100 * time.Microsecond)
		}
	}
	defer func() { afterSend = nil }()
	stuck := time.AfterFunc(2*time.Minute, func() { client.SetReadDeadline(time.Unix(1, 0)) })
	defer stuck.Stop()
	buf := make([]byte, 64)
	for i := range 20000 {
		req := fmt.Sprintf("q %d\n", i)
		bw.WriteString(req)
		if !sw.arm() {
			t.Fatal("arm failed")
		}
		n, err := sw.read(buf)
		if err != nil {
			t.Fatalf("request %d: %v (a missed wake-up if a timeout)", i, err)
		}
		if sw.armed || bw.Buffered() != 0 {
			t.Fatalf("request %d: the read left the request unsent", i)
		}
		got := string(buf[:n])
		for len(got) < len(req)+3 {
			m, err := client.Read(buf)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			got += string(buf[:m])
		}
		if got != "re "+req {
			t.Fatalf("request %d: answer %q", i, got)
		}
	}
}

// TestSendWaitFlushFails: a request that cannot go out is a flushError at
// once, never a read that waits for an answer to nothing.
func TestSendWaitFlushFails(t *testing.T) {
	t.Run("write deadline past", func(t *testing.T) {
		client, _ := tcpPair(t)
		sw, bw := newSendWait(t, client)
		client.SetWriteDeadline(time.Unix(1, 0))
		bw.WriteString("GET / HTTP/1.1\r\n\r\n")
		sw.arm()
		_, err := sw.read(make([]byte, 16))
		var fe flushError
		if !errors.As(err, &fe) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want a flushError of the write deadline", err)
		}
	})
	t.Run("reset by the peer", func(t *testing.T) {
		client, server := tcpPair(t)
		sw, bw := newSendWait(t, client)
		server.(*net.TCPConn).SetLinger(0)
		server.Close()
		// Until the reset has arrived: a peek reports it.
		var p probe
		p.init(client)
		deadline := time.Now().Add(time.Minute)
		for p.alive() {
			if time.Now().After(deadline) {
				t.Fatal("the reset never arrived")
			}
			time.Sleep(time.Millisecond)
		}
		bw.WriteString("GET / HTTP/1.1\r\n\r\n")
		sw.arm()
		_, err := sw.read(make([]byte, 16))
		var fe flushError
		if !errors.As(err, &fe) || !stale(err) {
			t.Fatalf("err = %v, want a flushError of a stale connection", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		client, _ := tcpPair(t)
		sw, bw := newSendWait(t, client)
		bw.WriteString("GET / HTTP/1.1\r\n\r\n")
		sw.arm()
		client.Close()
		_, err := sw.read(make([]byte, 16))
		var fe flushError
		if !errors.As(err, &fe) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err = %v, want a flushError of a closed connection", err)
		}
	})
}

// TestSendWaitReadEnds: after the request went out, the read ends as a
// net.Conn read would: EOF for the peer's FIN, a "read" timeout for the
// read deadline.
func TestSendWaitReadEnds(t *testing.T) {
	t.Run("EOF", func(t *testing.T) {
		client, server := tcpPair(t)
		sw, bw := newSendWait(t, client)
		go func() {
			bufio.NewReader(server).ReadString('\n')
			server.Close()
		}()
		bw.WriteString("q\n")
		sw.arm()
		n, err := sw.read(make([]byte, 16))
		if n != 0 || err != io.EOF {
			t.Fatalf("read = %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		client, server := tcpPair(t)
		sw, bw := newSendWait(t, client)
		got := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(server).ReadString('\n')
			got <- line
		}()
		client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		bw.WriteString("q\n")
		sw.arm()
		_, err := sw.read(make([]byte, 16))
		var op *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &op) || op.Op != "read" {
			t.Fatalf("err = %v, want a read timeout", err)
		}
		var fe flushError
		if errors.As(err, &fe) {
			t.Fatalf("err = %v: the request went out, this is no flushError", err)
		}
		if line := <-got; line != "q\n" {
			t.Fatalf("the peer got %q", line)
		}
	})
}

// TestH1SendsFromTheRead: the proxy's requests that fit the write buffer
// go out from the read that waits for their answer, and one that does not
// fit is flushed first and still answered.
func TestH1SendsFromTheRead(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer upstream.Close()
	up, err := New(config.Upstream{URL: upstream.URL, ConnectTimeout: config.Duration(5 * time.Second),
		ResponseHeaderTimeout: config.Duration(time.Minute), IdleConnTimeout: config.Duration(time.Minute),
		MaxIdleConnsPerHost: 8}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	front := httptest.NewServer(up)
	defer front.Close()

	var sent atomic.Int64
	afterSend = func() { sent.Add(1) }
	defer func() { afterSend = nil }()

	get := func(path string, header string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front.URL+path, nil)
		if header != "" {
			req.Header.Set("X-Big", header)
		}
		res, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "ok "+path {
			t.Fatalf("GET %s: %d %q", path, res.StatusCode, b)
		}
	}
	for i := range 20 {
		get(fmt.Sprintf("/small/%d", i), "")
	}
	if n := sent.Load(); n != 20 {
		t.Fatalf("%d of 20 small requests were sent by the read", n)
	}
	get("/big", strings.Repeat("x", 6<<10))
	if n := sent.Load(); n != 20 {
		t.Fatalf("a request larger than the write buffer was left to the read (%d)", n)
	}
	get("/after", "")
	if n := sent.Load(); n != 21 {
		t.Fatalf("after the large request: %d sent by the read, want 21", n)
	}
}
