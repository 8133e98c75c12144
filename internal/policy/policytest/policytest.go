// Package policytest holds helpers for testing policy units: a policy's
// config node from a YAML string, an Exchange for an httptest request, an
// Env, an assertion on config errors, and a chain of response filters
// ending in a Recorder, built as the gateway builds it.
package policytest

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strconv"
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

// Recorder is the client end of a chain of response filters: what the
// client would have received. It fails its test on a breach of the
// policy.ResponseWriter contract reaching it (two statuses, body bytes or
// a flush before the status, anything after End, End twice).
type Recorder struct {
	t testing.TB
	// Status is the status sent, 0 if none was.
	Status int
	// HeaderMap is the response header, shared by the chain.
	HeaderMap http.Header
	Body      bytes.Buffer
	// Refusal is the denial a filter refused the response with, nil if
	// none did. The refusal is rendered as problem+json {"code": ...}.
	Refusal *policy.Denial
	// Flushes counts the flushes that reached the client.
	Flushes int
	Ended   bool
}

func (r *Recorder) Header() http.Header { return r.HeaderMap }

func (r *Recorder) WriteHeader(status int) {
	r.t.Helper()
	if r.Status != 0 {
		r.t.Errorf("policytest: WriteHeader(%d) after WriteHeader(%d)", status, r.Status)
		return
	}
	if r.Ended {
		r.t.Errorf("policytest: WriteHeader(%d) after End", status)
	}
	r.Status = status
}

func (r *Recorder) Write(b []byte) (int, error) {
	r.t.Helper()
	if r.Status == 0 {
		r.t.Errorf("policytest: %d body bytes before the status", len(b))
	}
	if r.Ended {
		r.t.Errorf("policytest: %d body bytes after End", len(b))
	}
	return r.Body.Write(b)
}

func (r *Recorder) Flush() {
	r.t.Helper()
	if r.Status == 0 {
		r.t.Error("policytest: Flush before the status")
	}
	r.Flushes++
}

func (r *Recorder) End() {
	r.t.Helper()
	if r.Ended {
		r.t.Error("policytest: End twice")
	}
	r.Ended = true
}

func (r *Recorder) Refuse(d *policy.Denial) {
	r.t.Helper()
	r.t.Error("policytest: Refuse reached the client's writer")
}

// Filters wraps filters around a new Recorder as the gateway does: in
// chain order, the first filter nearest the client, each given a link to
// the one below that renders its refusal into them as a response of the
// gateway's own. It returns the writer to send the response to (status,
// body, End) and the Recorder.
func Filters(t testing.TB, ex *policy.Exchange, filters ...policy.ResponseFilter) (policy.ResponseWriter, *Recorder) {
	rec := &Recorder{t: t, HeaderMap: http.Header{}}
	var next policy.ResponseWriter = rec
	for _, f := range filters {
		next = f.FilterResponse(ex, &link{t: t, ex: ex, rec: rec, next: next})
	}
	return next, rec
}

// Respond sends a response (status, header, body in the given writes, End)
// through filters, built as Filters does, and returns what the client got.
func Respond(t testing.TB, ex *policy.Exchange, filters []policy.ResponseFilter, status int, header http.Header, writes ...string) *Recorder {
	t.Helper()
	w, rec := Filters(t, ex, filters...)
	maps.Copy(w.Header(), header)
	w.WriteHeader(status)
	for _, b := range writes {
		if n, err := w.Write([]byte(b)); err != nil || n != len(b) {
			t.Fatalf("policytest: Write: %d, %v; want %d, nil", n, err, len(b))
		}
	}
	w.End()
	if !rec.Ended {
		t.Error("policytest: End did not reach the client")
	}
	return rec
}

// link is the gateway's filterLink for tests.
type link struct {
	t                     testing.TB
	ex                    *policy.Exchange
	rec                   *Recorder
	next                  policy.ResponseWriter
	wrote, refused, ended bool
}

func (l *link) Header() http.Header { return l.next.Header() }

func (l *link) WriteHeader(status int) {
	l.t.Helper()
	if l.wrote {
		l.t.Errorf("policytest: a filter called WriteHeader(%d) twice", status)
		return
	}
	l.wrote = true
	l.next.WriteHeader(status)
}

func (l *link) Write(b []byte) (int, error) {
	if l.refused {
		return len(b), nil
	}
	if !l.wrote {
		l.WriteHeader(http.StatusOK)
	}
	return l.next.Write(b)
}

func (l *link) Flush() {
	if l.wrote && !l.refused {
		l.next.Flush()
	}
}

func (l *link) End() {
	l.t.Helper()
	if l.ended {
		l.t.Error("policytest: a filter called End twice")
		return
	}
	l.ended = true
	l.next.End()
}

func (l *link) Refuse(d *policy.Denial) {
	l.t.Helper()
	if l.wrote {
		l.t.Errorf("policytest: Refuse(%s) after the status went down: the gateway aborts the response", d.Code)
		return
	}
	l.wrote, l.refused = true, true
	l.rec.Refusal = d
	l.ex.GatewayResponse = true
	h := l.next.Header()
	for k := range h {
		if strings.HasPrefix(k, "Content-") || k == "Etag" || k == "Set-Cookie" || k == "Location" {
			delete(h, k)
		}
	}
	body := `{"code":"` + d.Code + `"}`
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	l.next.WriteHeader(d.StatusCode())
	l.next.Write([]byte(body)) //nolint:errcheck // the recorder's
}

// WantConfigErrors fails t unless err holds one config error in File per
// want, in file order, each at the wanted line with a path ending with the
// wanted path: it checks that a unit's validate reports independent
// problems together rather than one per load.
func WantConfigErrors(t testing.TB, err error, want ...ConfigErrorAt) {
	t.Helper()
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %T %v, want config.Errors", err, err)
	}
	if len(es) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if es[i].File != File || es[i].Line != w.Line || !strings.HasSuffix(es[i].Path, w.Path) {
			t.Errorf("error %d at %s:%d %s, want %s:%d %s (%v)", i, es[i].File, es[i].Line, es[i].Path, File, w.Line, w.Path, es[i])
		}
	}
}

// ConfigErrorAt is where WantConfigErrors wants an error.
type ConfigErrorAt struct {
	Line int
	Path string
}
