// Package audit is Gatehouse's audit log: one JSON line per security event
// (a denial, an authentication failure, a token issued or revoked, an STS
// token issued or cancelled, a config reload, an admin action, a key
// rotation), written to stdout and/or a size-rotated file, and the most
// recent events kept in memory for the admin API and the console.
//
// An Event has no field for a token, a key or a secret, and every string
// it carries is cleaned when recorded: anything shaped like a JWT, a
// bearer credential or a long opaque string is replaced by "[redacted]"
// (see Clean). Callers put identifiers (a jti, a kid, a client id) in it,
// never credentials.
//
// A nil *Log discards everything, so any package can hold one and call
// Record without checking.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Kind is what happened.
type Kind string

// The event kinds.
const (
	// Denial: a policy refused a request (other than an authentication
	// failure).
	Denial Kind = "denial"
	// AuthFailure: a request was refused with 401 (no or bad credentials),
	// or a client failed to authenticate to the authorization server.
	AuthFailure Kind = "auth_failure"
	// TokenIssue: the authorization server issued an access token.
	TokenIssue Kind = "token_issue"
	// TokenRevoke: an access token was revoked (RFC 7009 or the admin API).
	TokenRevoke Kind = "token_revoke"
	// STSIssue and STSCancel: the WS-Trust STS issued or cancelled a token.
	STSIssue  Kind = "sts_issue"
	STSCancel Kind = "sts_cancel"
	// ConfigReload: a config reload was attempted (Result success or
	// failure).
	ConfigReload Kind = "config_reload"
	// AdminAction: the admin API changed something (Action says what).
	AdminAction Kind = "admin_action"
	// KeyRotation: a signing key was rotated.
	KeyRotation Kind = "key_rotation"
)

// Kinds lists every kind, for filters and documentation.
var Kinds = []Kind{Denial, AuthFailure, TokenIssue, TokenRevoke, STSIssue, STSCancel, ConfigReload, AdminAction, KeyRotation}

// Event is one security event. Zero fields are left out of the line.
// There is deliberately no free-form map: each field is an identifier or a
// short public text, cleaned by Record.
type Event struct {
	Kind Kind `json:"kind"`
	// Time is when it happened; zero: the Log's clock at Record.
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	// TraceID and SpanID tie the event to the request's trace when
	// tracing is on (hex, as in the access log): the span of the request
	// or of the token service that answered it.
	TraceID   string     `json:"trace_id,omitempty"`
	SpanID    string     `json:"span_id,omitempty"`
	Principal string     `json:"principal,omitempty"`
	ClientIP  netip.Addr `json:"client_ip,omitzero"`
	Route     string     `json:"route,omitempty"`
	Policy    string     `json:"policy,omitempty"`
	// Code is the stable error code of a denial or failure.
	Code   string `json:"code,omitempty"`
	Status int    `json:"status,omitempty"`
	// ClientID is an OAuth client, JTI a token's id, KeyID a key's kid.
	ClientID string `json:"client_id,omitempty"`
	JTI      string `json:"jti,omitempty"`
	KeyID    string `json:"kid,omitempty"`
	// Action names an admin action (reload, keys.rotate, tokens.revoke).
	Action string `json:"action,omitempty"`
	// Result is "success" or "failure" where an attempt can fail.
	Result string `json:"result,omitempty"`
	// Expires is a token's expiry (issue, revoke).
	Expires time.Time `json:"expires,omitzero"`
	// Detail is a short public explanation: what a client was told, or
	// what changed. Never an internal cause that could hold input.
	Detail string `json:"detail,omitempty"`
}

// Options are what a Log needs besides its config.
type Options struct {
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Stdout is where "stdout" writes. Nil: os.Stdout.
	Stdout io.Writer
	// Recent is how many events are kept in memory. Zero: 2000.
	Recent int
	// BaseDir resolves a relative output path.
	BaseDir string
}

// Log records events. It is safe for concurrent use.
type Log struct {
	now  func() time.Time
	path string // the file, "" when none

	mu   sync.Mutex
	outs []io.Writer
	file *rotator
	ring []Event
	next int // total events recorded; ring index is next % len(ring)
	line bytes.Buffer
	errs int

	// traceIDs finds the trace of an event recorded without one, by its
	// request id (SetTraceLookup). Nil: none is looked up.
	traceIDs atomic.Pointer[TraceLookup]
}

// TraceLookup returns the trace and span ids of the request in flight
// with the given id, or "" twice.
type TraceLookup func(requestID string) (traceID, spanID string)

// SetTraceLookup has events recorded with a request id but without a
// trace id (those of the token services, which know the request but not
// its trace) stamped with the ids f finds. Nil turns it off.
func (l *Log) SetTraceLookup(f TraceLookup) {
	if l == nil {
		return
	}
	if f == nil {
		l.traceIDs.Store(nil)
		return
	}
	l.traceIDs.Store(&f)
}

// New opens the log cfg describes. A file that cannot be opened is an
// error naming audit.output when c (for positions) is given.
func New(cfg config.Audit, c *config.Config, opt Options) (*Log, error) {
	l := &Log{now: opt.Now}
	if l.now == nil {
		l.now = time.Now
	}
	n := opt.Recent
	if n <= 0 {
		n = 2000
	}
	l.ring = make([]Event, n)
	stdout := opt.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	switch cfg.Output {
	case "", "off":
	case "stdout":
		l.outs = append(l.outs, stdout)
	case "stderr":
		l.outs = append(l.outs, os.Stderr)
	default:
		p := cfg.Output
		if opt.BaseDir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(opt.BaseDir, p)
		}
		maxSize, maxFiles := cfg.MaxSize.Bytes(), cfg.MaxFiles
		if maxSize <= 0 {
			maxSize = config.DefaultAuditMaxSize
		}
		if maxFiles <= 0 {
			maxFiles = config.DefaultAuditMaxFiles
		}
		f, err := openRotator(p, maxSize, maxFiles)
		if err != nil {
			return nil, c.Errorf("audit.output", "audit: %v", err)
		}
		l.file, l.path = f, p
		l.outs = append(l.outs, f)
		if cfg.Stdout {
			l.outs = append(l.outs, stdout)
		}
	}
	return l, nil
}

// Discard returns a Log that writes nowhere but keeps recent events in
// memory.
func Discard() *Log {
	l, _ := New(config.Audit{Output: "off"}, nil, Options{})
	return l
}

// Path returns the file written, or "" when none.
func (l *Log) Path() string {
	if l == nil {
		return ""
	}
	return l.path
}

// Record cleans e (see Clean), stamps it with the time if unset and
// writes it. A write failure is counted (WriteErrors), not returned: an
// audit sink that fails must not fail requests. A nil l does nothing.
func (l *Log) Record(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	if e.TraceID == "" && e.RequestID != "" {
		if f := l.traceIDs.Load(); f != nil {
			e.TraceID, e.SpanID = (*f)(e.RequestID)
		}
	}
	clean(&e)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next%len(l.ring)] = e
	l.next++
	if len(l.outs) == 0 {
		return
	}
	l.line.Reset()
	enc := json.NewEncoder(&l.line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&e); err != nil {
		l.errs++
		return
	}
	for _, w := range l.outs {
		if _, err := w.Write(l.line.Bytes()); err != nil {
			l.errs++
		}
	}
}

// WriteErrors returns how many events failed to be written.
func (l *Log) WriteErrors() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// Filter selects events; zero fields match everything.
type Filter struct {
	Kind      Kind
	Route     string
	Code      string
	RequestID string
	// Since keeps events at or after it.
	Since time.Time
}

func (f Filter) match(e *Event) bool {
	return (f.Kind == "" || e.Kind == f.Kind) && (f.Route == "" || e.Route == f.Route) &&
		(f.Code == "" || e.Code == f.Code) && (f.RequestID == "" || e.RequestID == f.RequestID) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since))
}

// Recent returns up to limit events held in memory that match f, newest
// first. limit <= 0 means all held.
func (l *Log) Recent(f Filter, limit int) []Event {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(l.next, len(l.ring))
	var out []Event
	for i := 1; i <= n; i++ {
		e := &l.ring[(l.next-i)%len(l.ring)]
		if f.match(e) {
			out = append(out, *e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

// maxSearch bounds how much of the files Search reads.
const maxSearch = 512 << 20

// Search returns the events of requestID: those in memory, else those in
// the log file and its rotated predecessors (newest file first), oldest
// event first.
func (l *Log) Search(requestID string) ([]Event, error) {
	if l == nil || requestID == "" {
		return nil, nil
	}
	if ev := l.Recent(Filter{RequestID: requestID}, 0); len(ev) > 0 {
		slices.Reverse(ev)
		return ev, nil
	}
	if l.file == nil {
		return nil, nil
	}
	l.mu.Lock()
	files := l.file.files()
	l.mu.Unlock()
	needle := []byte(`"request_id":` + quote(requestID))
	var out []Event
	read := int64(0)
	for _, p := range files {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("audit: %w", err)
		}
		var found []Event
		sc := bufio.NewScanner(io.LimitReader(f, maxSearch-read))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			read += int64(len(sc.Bytes())) + 1
			if !bytes.Contains(sc.Bytes(), needle) {
				continue
			}
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.RequestID == requestID {
				found = append(found, e)
			}
		}
		f.Close()
		out = append(found, out...)
		if len(out) > 0 || read >= maxSearch {
			break
		}
	}
	return out, nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Close closes the file, if any.
func (l *Log) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.file.Close()
}
