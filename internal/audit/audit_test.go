package audit

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

func TestClean(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJyZWFkZXIifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	tests := []struct{ in, want string }{
		{"insufficient_scope", "insufficient_scope"},
		{"scope products:write required", "scope products:write required"},
		{"token " + jwt + " refused", "token [redacted] refused"},
		{"Authorization: Bearer abc.def", "Authorization: Bearer [redacted]"},
		{"dpop xyz", "dpop [redacted]"},
		{"key gh_grV75yl1PRi0KjorF6L24c36hJfGXzoqcokcE0BTVH0AAAAAAAAAAAA is bad", "key [redacted] is bad"},
		{"request 0123456789abcdef0123456789abcdef", "request 0123456789abcdef0123456789abcdef"},
		{"line\nbreak\x00", "linebreak"},
		{strings.Repeat("é", 200), strings.Repeat("é", 128)},
	}
	for _, tc := range tests {
		t.Run(tc.in[:min(len(tc.in), 30)], func(t *testing.T) {
			if got := Clean(tc.in); got != tc.want {
				t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRecordEveryKind(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	l, err := New(config.Audit{Output: "stdout"}, nil, Options{Now: func() time.Time { return now }, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.7")
	for _, k := range Kinds {
		l.Record(Event{Kind: k, RequestID: "req-" + string(k), Principal: "alice", ClientIP: ip, Route: "r", Policy: "p", Code: "c",
			Detail: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-sig-sig"})
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(Kinds) {
		t.Fatalf("got %d lines, want %d", len(lines), len(Kinds))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"kind": string(Kinds[i]), "time": "2026-05-01T12:00:00Z", "request_id": "req-" + string(Kinds[i]),
			"principal": "alice", "client_ip": "192.0.2.7", "route": "r", "policy": "p", "code": "c", "detail": "Bearer [redacted]"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("line %d %s: got %v, want %v", i, k, m[k], v)
			}
		}
		if strings.Contains(line, "eyJ") {
			t.Errorf("line %d holds a token: %s", i, line)
		}
	}
	if got := l.Recent(Filter{Kind: TokenIssue}, 0); len(got) != 1 || got[0].RequestID != "req-token_issue" {
		t.Errorf("Recent(token_issue): got %+v", got)
	}
	if got := l.Recent(Filter{}, 3); len(got) != 3 || got[0].Kind != KeyRotation {
		t.Errorf("Recent newest first: got %+v", got)
	}
	var nilLog *Log
	nilLog.Record(Event{Kind: Denial}) // must not panic
	if nilLog.Recent(Filter{}, 0) != nil {
		t.Error("nil log holds events")
	}
}

func TestFileRotationAndSearch(t *testing.T) {
	dir := t.TempDir()
	l, err := New(config.Audit{Output: "audit.log", MaxSize: 4096, MaxFiles: 2}, nil, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// About 150 bytes a line: 100 lines are several files' worth.
	for i := range 100 {
		l.Record(Event{Kind: Denial, RequestID: "r" + strings.Repeat("0", 3-len(itoa(i))) + itoa(i), Route: "products", Code: "ip_denied", Detail: "client address not allowed"})
	}
	l.Close()
	for _, name := range []string{"audit.log", "audit.log.1", "audit.log.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Size() > 4096 {
			t.Errorf("%s: %d bytes, more than max_size", name, st.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.log.3")); !os.IsNotExist(err) {
		t.Errorf("audit.log.3 exists beyond max_files: %v", err)
	}
	// Found in a rotated file once out of memory: a Log with a tiny ring.
	l2, err := New(config.Audit{Output: "audit.log", MaxSize: 4096, MaxFiles: 2}, nil, Options{BaseDir: dir, Recent: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	ev, err := l2.Search("r070")
	if err != nil || len(ev) != 1 || ev[0].Code != "ip_denied" {
		t.Errorf("Search(r070): got %+v, %v", ev, err)
	}
	if ev, _ := l2.Search("r000"); len(ev) != 0 {
		t.Errorf("Search(r000) found an event of a file rotated out: %+v", ev)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestOpenError(t *testing.T) {
	c, err := config.LoadBytes("gw.yaml", []byte(`
listeners: [{address: "127.0.0.1:0"}]
audit:
  output: /nonexistent-dir/audit.log
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(c.Audit, c, Options{})
	if err == nil || !strings.Contains(err.Error(), "gw.yaml:4:") || !strings.Contains(err.Error(), "audit.output") {
		t.Errorf("got %v, want an error at gw.yaml:4 audit.output", err)
	}
}
