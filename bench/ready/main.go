// Command ready waits until a URL answers 200 and prints the seconds since
// a start time: how long a server took to come up. It polls every 2 ms
// from one process over fresh connections, where a shell loop of curl
// polls 10 to 100 times less often and spends a core on the processes it
// starts, taking it from the server being timed on a small machine.
//
//	t0=$(date +%s%N); gatehouse serve ... & go run ./bench/ready -since $t0 -pid $! -H 'X-API-Key: k' URL
//
// With -pid it gives up as soon as that process has exited.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	since := flag.Int64("since", 0, "start time, Unix nanoseconds (default: now)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	pid := flag.Int("pid", 0, "the server's process: give up when it has exited")
	var hs headers
	flag.Var(&hs, "H", "request header 'Name: value' (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ready [-since NS] [-H 'Name: value'] URL")
		os.Exit(2)
	}
	start := time.Now()
	if *since != 0 {
		start = time.Unix(0, *since)
	}
	req, err := http.NewRequest(http.MethodGet, flag.Arg(0), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ready:", err)
		os.Exit(2)
	}
	for _, h := range hs {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("%.3f\n", time.Since(start).Seconds())
				return
			}
		}
		if *pid != 0 && exited(*pid) {
			fmt.Fprintf(os.Stderr, "ready: process %d exited before %s answered 200\n", *pid, flag.Arg(0))
			os.Exit(1)
		}
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "ready: %s did not answer 200 within %v\n", flag.Arg(0), *timeout)
	os.Exit(1)
}

// exited reports whether process pid is gone or a zombie (exited, not yet
// reaped by the shell that started it).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}
