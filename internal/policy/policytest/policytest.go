// Package policytest holds helpers for testing policy units: a policy's
// config node from a YAML string, an Exchange for an httptest request, an
// Env, and an assertion on config errors.
package policytest

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// File is the file name config errors from Node carry.
const File = "policy.yaml"

// RequestID is the request id of every Exchange built here.
const RequestID = "test-request-id"

// Start is the fixed start time of every Exchange and the time Env's clock
// reads.
var Start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// Node parses yaml, a policy's settings (the value under its type key, e.g.
// "allow: [10.0.0.0/8]"), into the node a factory receives. Line n of yaml
// is line n in config errors, so tests can assert positions; yaml is used
// as given, without removing indentation. An empty yaml gives an empty
// node, like `- size_limit:` in a route.
func Node(t testing.TB, yaml string) *config.Node {
	t.Helper()
	n, err := config.ParseNode(File, []byte(yaml), nil)
	if err != nil {
		t.Fatalf("policytest: parsing policy settings: %v", err)
	}
	return n
}

// Env returns an Env for a REST route named "test" with a discarding
// logger, a clock stopped at Start and no trusted proxies.
func Env() *policy.Env {
	return &policy.Env{
		Route:  policy.Route{Name: "test", Protocol: policy.REST},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return Start },
	}
}

// Exchange returns an Exchange for r the way the gateway would build it
// with no trusted proxies: the client IP is r's TCP peer (RemoteAddr, set to
// 192.0.2.1:1234 by httptest.NewRequest), TLS is r.TLS != nil.
func Exchange(r *http.Request) *policy.Exchange {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().WithZone("").Unmap()
	}
	return &policy.Exchange{
		Request:   r,
		Route:     &policy.Route{Name: "test", Protocol: policy.REST},
		ClientIP:  ip,
		TLS:       r.TLS != nil,
		RequestID: RequestID,
		Start:     Start,
	}
}

// WantConfigError fails t unless err is a config error at line of File
// whose path ends with path and whose message contains msg.
func WantConfigError(t testing.TB, err error, line int, path, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one at line %d, %s: %s", line, path, msg)
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want a *config.Error", err, err)
	}
	if ce.File != File || ce.Line != line {
		t.Errorf("error at %s:%d, want %s:%d (%v)", ce.File, ce.Line, File, line, err)
	}
	if !strings.HasSuffix(ce.Path, path) {
		t.Errorf("error path %q, want it to end with %q (%v)", ce.Path, path, err)
	}
	if !strings.Contains(ce.Msg, msg) {
		t.Errorf("error message %q, want it to contain %q", ce.Msg, msg)
	}
}
