package quota

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"no period", "requests: 10\n", 1, "", "needs period"},
		{"bad period", "period: fortnight\nrequests: 1\n", 1, "period", `unknown period "fortnight"`},
		{"no quotas", "period: day\n", 1, "", "needs requests, bytes or tiers"},
		{"bad zone", "period: day\nrequests: 1\ntime_zone: Mars/Olympus\n", 3, "time_zone", "unknown time zone"},
		{"local zone", "period: day\nrequests: 1\ntime_zone: Local\n", 3, "time_zone", "unknown time zone"},
		{"negative", "period: day\nrequests: -1\n", 2, "requests", "must not be negative"},
		{"bad bytes", "period: day\nbytes: 1kb\n", 2, "bytes", "unknown unit"},
		{"empty tier", "period: day\nrequests: 1\ntiers:\n  gold: {}\n", 4, "tiers.gold", `tier "gold" needs requests or bytes`},
		{"unknown field", "period: day\nrequests: 1\nrequest: 2\n", 3, "request", `unknown field "request"`},
		{"local mode", "period: day\nrequests: 1\non_store_error: local\n", 3, "on_store_error", "want closed or open"},
		{"bad key", "period: day\nrequests: 1\nkey: who\n", 3, "key", "unknown key"},
		{"bad name", "period: day\nrequests: 1\nname: 'a b'\n", 3, "name", "no spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestBounds(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	at := func(s string, loc *time.Location) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		period     string
		loc        *time.Location
		t          string
		start, end string // in loc
	}{
		{"minute", time.UTC, "2025-03-30 01:59:30", "2025-03-30 01:59:00", "2025-03-30 02:00:00"},
		{"hour", kolkata, "2025-01-02 10:45:00", "2025-01-02 10:00:00", "2025-01-02 11:00:00"},
		{"day", time.UTC, "2025-01-02 23:59:59", "2025-01-02 00:00:00", "2025-01-03 00:00:00"},
		// The day clocks go forward has 23 hours in Berlin.
		{"day", berlin, "2025-03-30 12:00:00", "2025-03-30 00:00:00", "2025-03-31 00:00:00"},
		{"week", time.UTC, "2025-01-05 10:00:00", "2024-12-30 00:00:00", "2025-01-06 00:00:00"}, // a Sunday
		{"week", time.UTC, "2025-01-06 00:00:00", "2025-01-06 00:00:00", "2025-01-13 00:00:00"}, // a Monday
		{"month", berlin, "2025-02-28 23:30:00", "2025-02-01 00:00:00", "2025-03-01 00:00:00"},
		{"month", time.UTC, "2024-12-31 12:00:00", "2024-12-01 00:00:00", "2025-01-01 00:00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.period+" "+tt.loc.String()+" "+tt.t, func(t *testing.T) {
			start, end := bounds(tt.period, tt.loc, at(tt.t, tt.loc))
			if got, want := start, at(tt.start, tt.loc); !got.Equal(want) {
				t.Errorf("start = %v, want %v", got, want)
			}
			if got, want := end, at(tt.end, tt.loc); !got.Equal(want) {
				t.Errorf("end = %v, want %v", got, want)
			}
		})
	}
	// Berlin's 23-hour day, measured.
	s, e := bounds("day", berlin, at("2025-03-30 12:00:00", berlin))
	if got, want := e.Sub(s), 23*time.Hour; got != want {
		t.Errorf("2025-03-30 in Berlin lasts %v, want %v", got, want)
	}
}

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place, and that a tier whose name is not a
// plain key is still named so that the path reads back to the file.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "name: 'a b'\nperiod: fortnight\nrequests: -1\ntiers:\n  gold.plus: {requests: -5}\n  silver: {}\non_store_error: maybe\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "name"},
		policytest.ConfigErrorAt{Line: 2, Path: "period"},
		policytest.ConfigErrorAt{Line: 3, Path: "requests"},
		policytest.ConfigErrorAt{Line: 5, Path: `tiers["gold.plus"].requests`},
		policytest.ConfigErrorAt{Line: 6, Path: "tiers.silver"},
		policytest.ConfigErrorAt{Line: 7, Path: "on_store_error"},
	)
	_, err = New(policytest.Node(t, "period: day\nrequests: 5\nkey: nobody\ntime_zone: Mars/Olympus\n"), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 3, Path: "key"},
		policytest.ConfigErrorAt{Line: 4, Path: "time_zone"},
	)
}
