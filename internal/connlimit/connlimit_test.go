package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestBounds dials a wrapped loopback listener from several addresses and
// checks which connections are admitted, and that closing one gives its
// place back.
func TestBounds(t *testing.T) {
	tests := []struct {
		name   string
		opt    Options
		from   []string // dial order
		admit  int
		reason map[string]int
	}{
		{"per ip", Options{PerIP: 2}, []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"}, 3, map[string]int{ReasonPerIP: 1}},
		{"total", Options{Max: 2}, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, 2, map[string]int{ReasonTotal: 1}},
		{"exempt proxy", Options{PerIP: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}}, []string{"127.0.0.5", "127.0.0.5", "127.0.0.5"}, 3, nil},
		{"no bounds", Options{}, []string{"127.0.0.2", "127.0.0.2", "127.0.0.2"}, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			refused := map[string]int{}
			opt := tt.opt
			opt.Refused = func(r string) { mu.Lock(); refused[r]++; mu.Unlock() }
			ln := Wrap(inner, opt)
			defer ln.Close()
			accepted := make(chan net.Conn, len(tt.from))
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var clients []net.Conn
			for _, from := range tt.from {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				c, err := d.Dial("tcp", inner.Addr().String())
				if err == nil {
					clients = append(clients, c)
				}
			}
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			var got []net.Conn
			deadline := time.After(30 * time.Second)
			for len(got) < tt.admit {
				select {
				case c := <-accepted:
					got = append(got, c)
				case <-deadline:
					t.Fatalf("admitted %d, want %d", len(got), tt.admit)
				}
			}
			// Refusals are counted before the next Accept returns; wait
			// for the ones expected.
			waitFor := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := 0
				for _, v := range refused {
					n += v
				}
				mu.Unlock()
				want := 0
				for _, v := range tt.reason {
					want += v
				}
				if n >= want || time.Now().After(waitFor) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			for r, want := range tt.reason {
				if refused[r] != want {
					t.Errorf("refused %s: %d, want %d", r, refused[r], want)
				}
			}
			mu.Unlock()
			if ln.Open() != tt.admit {
				t.Errorf("Open() = %d, want %d", ln.Open(), tt.admit)
			}
			for _, c := range got {
				c.Close()
				c.Close() // twice: counted once
			}
			if ln.Open() != 0 {
				t.Errorf("Open() = %d after closing all, want 0", ln.Open())
			}
			if len(ln.perIP) != 0 {
				t.Errorf("per-address counts left: %v", ln.perIP)
			}
		})
	}
}
