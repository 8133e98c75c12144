package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// defaultHealthURL is the admin listener's /healthz at its default address.
const defaultHealthURL = "http://127.0.0.1:9901/healthz"

// cmdHealthcheck handles `gatehouse healthcheck`: it GETs a running
// gateway's admin /healthz and exits 0 when it answers 200, 1 otherwise.
// It is the container image's HEALTHCHECK, as distroless and scratch
// images have no shell or curl. The URL comes from --url, else
// $GATEHOUSE_HEALTHCHECK_URL, else the default admin address; redirects
// are not followed (a 3xx is unhealthy).
func cmdHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", stderr)
	url := fs.String("url", "", "the `URL` to probe (default: $GATEHOUSE_HEALTHCHECK_URL, else "+defaultHealthURL+")")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: gatehouse healthcheck [--url URL] [--timeout 3s]")
		return 2
	}
	if *url == "" {
		*url = os.Getenv("GATEHOUSE_HEALTHCHECK_URL")
	}
	if *url == "" {
		*url = defaultHealthURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse healthcheck:", err)
		return 2
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse healthcheck: unhealthy:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gatehouse healthcheck: unhealthy: %s answered %s\n", *url, resp.Status)
		return 1
	}
	fmt.Fprintf(stdout, "healthy: %s\n", *url)
	return 0
}
