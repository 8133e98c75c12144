package ratelimit

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"empty", "key: ip\n", 1, "", "needs limits"},
		{"unknown field", "rate: 1\nrat: 2\n", 2, "rat", `unknown field "rat"`},
		{"both forms", "rate: 1\nlimits:\n  - {rate: 2}\n", 1, "rate", "not both"},
		{"zero rate", "limits:\n  - {rate: 5}\n  - {rate: 0, per: 1m}\n", 3, "limits[1].rate", "at least 1"},
		{"tiny per", "rate: 1\nper: 1us\n", 2, "per", "at least 1ms"},
		{"too fast", "rate: 2000000\nper: 1s\n", 1, "rate", "more than one per microsecond"},
		{"negative burst", "rate: 1\nburst: -1\n", 2, "burst", "must not be negative"},
		{"bad key", "rate: 1\nkey: user\n", 2, "key", `unknown key "user"`},
		{"bad header key", "rate: 1\nkey: \"header:\"\n", 2, "key", "want header:NAME"},
		{"bad expr key", "rate: 1\nkey: 'expr:principal.nope'\n", 2, "key", "undefined field 'nope'"},
		{"non-string expr key", "rate: 1\nkey: 'expr:1 + 2'\n", 2, "key", "must be of type string"},
		{"cost over burst", "rate: 10\nburst: 5\ncost: 6\n", 3, "cost", "exceeds the burst 5"},
		{"negative cost", "rate: 10\ncost: -1\n", 2, "cost", "must not be negative"},
		{"cost and expr", "rate: 10\ncost: 1\ncost_expr: '2'\n", 3, "cost_expr", "not both"},
		{"bad cost expr", "rate: 10\ncost_expr: '\"a\"'\n", 2, "cost_expr", "must be of type int"},
		{"mode", "rate: 10\non_store_error: maybe\n", 2, "on_store_error", `unknown on_store_error "maybe"`},
		{"fraction without local", "rate: 10\nlocal_fraction: 0.5\n", 2, "local_fraction", "only for on_store_error: local"},
		{"fraction range", "rate: 10\non_store_error: local\nlocal_fraction: 1.5\n", 3, "local_fraction", "in (0, 1]"},
		{"duplicate names", "limits:\n  - {rate: 1, name: a}\n  - {rate: 2, name: a}\n", 3, "limits[1].name", `two limits named "a"`},
		{"bad limit name", "limits:\n  - {rate: 1, name: 'a b'}\n", 2, "limits[0].name", "use letters"},
		{"too many", "limits: [{rate: 1}, {rate: 2}, {rate: 3}, {rate: 4}, {rate: 5}, {rate: 6}, {rate: 7}, {rate: 8}, {rate: 9}]\n", 1, "limits", "at most 8 limits"},
		{"bad name", "rate: 1\nname: 'a:b'\n", 2, "name", "no spaces, braces or colons"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := decode(policytest.Node(t, "limits:\n  - {rate: 10, burst: 20}\n  - {rate: 1000, per: 1m}\n  - {rate: 5, per: 1h30m, name: slow}\n"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.key.String(), "consumer"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
	wantLimits := []store.Limit{{Rate: 10, Period: time.Second, Burst: 20}, {Rate: 1000, Period: time.Minute}, {Rate: 5, Period: 90 * time.Minute}}
	for i := range wantLimits {
		if got, want := s.limits[i], wantLimits[i]; got != want {
			t.Errorf("limit %d = %+v, want %+v", i, got, want)
		}
	}
	if got, want := s.names, []string{"10-per-1s", "1000-per-1m", "slow"}; !equalStrings(got, want) {
		t.Errorf("names = %q, want %q", got, want)
	}
	if s.cost != 1 || s.mode != "closed" || s.fraction != 1 || !s.headers {
		t.Errorf("defaults: cost %d mode %s fraction %g headers %v, want 1 closed 1 true", s.cost, s.mode, s.fraction, s.headers)
	}
	if got, want := policyHeader(s.names, s.limits), `"10-per-1s";q=10;w=1, "1000-per-1m";q=1000;w=60, "slow";q=5;w=5400`; got != want {
		t.Errorf("RateLimit-Policy = %s, want %s", got, want)
	}
}

func TestScaled(t *testing.T) {
	got := scaled([]store.Limit{{Rate: 100, Period: time.Minute, Burst: 30}, {Rate: 1, Period: time.Second}}, 0.34)
	want := []store.Limit{{Rate: 34, Period: time.Minute, Burst: 10}, {Rate: 1, Period: time.Second, Burst: 1}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("scaled[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "name: 'a b'\nlimits:\n  - {rate: 0}\n  - {rate: 5, burst: -1, name: 'x y'}\non_store_error: maybe\nlocal_fraction: 0.5\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "name"},
		policytest.ConfigErrorAt{Line: 3, Path: "limits[0].rate"},
		policytest.ConfigErrorAt{Line: 4, Path: "limits[1].burst"},
		policytest.ConfigErrorAt{Line: 4, Path: "limits[1].name"},
		policytest.ConfigErrorAt{Line: 5, Path: "on_store_error"},
		policytest.ConfigErrorAt{Line: 6, Path: "local_fraction"},
	)
}
