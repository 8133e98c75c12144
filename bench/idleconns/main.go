// Command idleconns measures what idle keep-alive connections cost a
// server: it reads the resident memory of the server's processes, opens n
// connections, sends one request on each (HTTP/1.1 keep-alive, or HTTP/2
// with prior knowledge when -h2c), reads the answers, leaves the
// connections open and idle, and reads the memory again.
//
//	go run ./bench/idleconns -addr 127.0.0.1:8080 -path /product/p-1 -n 1000 -pid 1234
//
// It prints one line: the connections, the RSS before and after, and the
// cost per connection in KiB. -pid may be given several times (nginx's
// master and workers); a pid's children are counted too.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type pids []int

func (p *pids) String() string { return fmt.Sprint(*p) }
func (p *pids) Set(s string) error {
	n, err := strconv.Atoi(s)
	*p = append(*p, n)
	return err
}

func main() {
	addr := flag.String("addr", "", "the server's host:port")
	path := flag.String("path", "/", "the path to GET on each connection")
	n := flag.Int("n", 100, "number of connections")
	h2c := flag.Bool("h2c", false, "speak HTTP/2 with prior knowledge (a listener with h2c: true)")
	settle := flag.Duration("settle", 2*time.Second, "how long to let the server settle before reading its memory")
	var ps pids
	flag.Var(&ps, "pid", "a server process (repeatable; children are included)")
	flag.Parse()
	if *addr == "" || len(ps) == 0 {
		fmt.Fprintln(os.Stderr, "usage: idleconns -addr HOST:PORT -pid PID [-n N] [-path P] [-h2c]")
		os.Exit(2)
	}
	time.Sleep(*settle)
	before := rss(ps)
	var conns []net.Conn
	var h2 []*http.ClientConn
	for i := 0; i < *n; i++ {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			fail("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if *h2c {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &p, DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}
			cc, err := tr.NewClientConn(context.Background(), "http", *addr)
			if err != nil {
				fail("h2 connection %d: %v", i, err)
			}
			req, _ := http.NewRequest("GET", "http://"+*addr+*path, nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				fail("h2 request %d: %v", i, err)
			}
			if resp.ProtoMajor != 2 {
				fail("h2 request %d: answered in %s", i, resp.Proto)
			}
			drain(resp)
			h2 = append(h2, cc)
			continue
		}
		// A server that stopped accepting (its connection limit) fails
		// the run instead of hanging it.
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", *path, *addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			fail("request %d: %v", i, err)
		}
		drain(resp)
		c.SetDeadline(time.Time{})
	}
	time.Sleep(*settle)
	after := rss(ps)
	proto := "http/1.1"
	if *h2c {
		proto = "h2c"
	}
	fmt.Printf("%d idle %s connections: RSS %.1f -> %.1f MiB, %.1f KiB per connection\n",
		*n, proto, float64(before)/1024, float64(after)/1024, float64(after-before)/float64(*n))
	for _, c := range conns {
		c.Close()
	}
	_ = h2
}

func drain(resp *http.Response) {
	buf := make([]byte, 4096)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	resp.Body.Close()
}

// rss returns the resident memory of the processes and their children, in KiB.
func rss(ps []int) int {
	total := 0
	seen := map[int]bool{}
	var add func(p int)
	add = func(p int) {
		if seen[p] {
			return
		}
		seen[p] = true
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				total += k
			}
		}
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		for _, f := range strings.Fields(string(kids)) {
			if c, err := strconv.Atoi(f); err == nil {
				add(c)
			}
		}
	}
	for _, p := range ps {
		add(p)
	}
	return total
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "idleconns: "+format+"\n", args...)
	os.Exit(1)
}
