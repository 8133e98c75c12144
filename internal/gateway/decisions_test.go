package gateway

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/builtin"
)

// TestDecisionRingOnlyWithAdmin: the decision history is kept for the admin
// API; without an admin listener nothing could read it, and nothing is kept.
func TestDecisionRingOnlyWithAdmin(t *testing.T) {
	for _, tc := range []struct {
		admin string
		want  int
	}{
		{`admin: {address: "off"}`, 0},
		{`admin: {address: "127.0.0.1:0", decision_history: 50}`, 50},
	} {
		cfg := load(t, "listeners: [{name: main, address: \"127.0.0.1:0\"}]\n"+tc.admin+`
routes:
  - name: r
    match: {path_prefix: /}
    upstream: {url: "http://127.0.0.1:1"}
`, nil)
		g, err := New(cfg, Options{BaseDir: t.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(g.decisions.slots); got != tc.want {
			t.Errorf("%s: %d decision slots, want %d", tc.admin, got, tc.want)
		}
		x := getExchange()
		x.Request = httptest.NewRequest("GET", "http://gw/x", nil)
		g.decisions.add(x, 200, 0) // must not panic on the empty ring
		putExchange(x)
		g.Close()
	}
}
