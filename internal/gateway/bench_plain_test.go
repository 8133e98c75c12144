//go:build unix

package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/builtin"
)

// BenchmarkPlainProxy measures the plain proxy path as bench/plain.yaml
// runs it (one route, no policies, access log disabled) over real loopback
// HTTP/1.1 keep-alive connections: a minimal client of raw connections
// → the gateway's net/http server → router → proxy → an httptest upstream.
// "direct" sends the same requests to the upstream itself, so that the
// gateway's share is roughly gateway minus direct. cpu-ns/op is the
// process's CPU (client, gateway and upstream alike) per request; the
// allocations are the whole process's too.
//
//	go test -run XXX -bench BenchmarkPlainProxy -benchmem -benchtime 20000x ./internal/gateway/
func BenchmarkPlainProxy(b *testing.B) {
	body := []byte(`{"id":"p-1001","name":"Widget","price":9.5}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer up.Close()
	cfg := `
store: {type: memory}
listeners: [{name: bench, address: "127.0.0.1:0"}]
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: products
    match: {path_prefix: /product}
    upstream: {url: "` + up.URL + `"}
`
	g, err := New(load(b, cfg, nil), Options{BaseDir: b.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	if err := g.Start(); err != nil {
		b.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	gw := g.Addr("bench").String()
	// What wrk sends in bench/run.sh, bearer token included.
	req := []byte("GET /product/p-1001 HTTP/1.1\r\nHost: " + gw + "\r\nAuthorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl\r\n\r\n")
	for _, tc := range []struct {
		name  string
		addr  string
		conns int
	}{
		{"direct/1conn", up.Listener.Addr().String(), 1},
		{"gateway/1conn", gw, 1},
		{"direct/16conns", up.Listener.Addr().String(), 16},
		{"gateway/16conns", gw, 16},
	} {
		b.Run(tc.name, func(b *testing.B) {
			clients := make([]*rawClient, tc.conns)
			for i := range clients {
				c, err := dialRaw(tc.addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.conn.Close()
				// Warm: the gateway's pooled upstream connections too.
				if err := c.do(req, len(body)); err != nil {
					b.Fatal(err)
				}
				clients[i] = c
			}
			b.ReportAllocs()
			b.ResetTimer()
			clock := benchcpu.Start(b)
			var wg sync.WaitGroup
			per := b.N / tc.conns
			for i, c := range clients {
				n := per
				if i == 0 {
					n += b.N % tc.conns
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if err := c.do(req, len(body)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			clock.Report()
		})
	}
}

// rawClient is an HTTP/1.1 keep-alive client that costs next to nothing:
// it writes a prepared request and reads the response's header up to its
// end and a body of the expected Content-Length.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

func dialRaw(addr string) (*rawClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawClient{conn: c, br: bufio.NewReaderSize(c, 4096), buf: make([]byte, 4096)}, nil
}

func (c *rawClient) do(req []byte, bodyLen int) error {
	if _, err := c.conn.Write(req); err != nil {
		return err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	n := -1
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if n != bodyLen {
		return fmt.Errorf("Content-Length %d, want %d", n, bodyLen)
	}
	_, err = c.br.Discard(n)
	return err
}
