package wssecurity

import (
	"testing"
	"time"
)

// TestParseUTC: every UTC spelling of xsd:dateTime is accepted with its
// instant; other zones, no zone, and what is not xsd:dateTime are refused.
func TestParseUTC(t *testing.T) {
	base := time.Date(2026, 12, 6, 3, 4, 5, 0, time.UTC)
	ok := map[string]time.Time{
		"2026-12-06T03:04:05Z":              base,
		"2026-12-06T03:04:05+00:00":         base,
		"2026-12-06T03:04:05-00:00":         base,
		" 2026-12-06T03:04:05Z\n":           base,
		"2026-12-06T03:04:05.1Z":            base.Add(100 * time.Millisecond),
		"2026-12-06T03:04:05.123+00:00":     base.Add(123 * time.Millisecond),
		"2026-12-06T03:04:05.123456Z":       base.Add(123456 * time.Microsecond),
		"2026-12-06T03:04:05.123456789Z":    base.Add(123456789),
		"2026-12-06T03:04:05.123456789123Z": base.Add(123456789),
	}
	for in, want := range ok {
		got, err := parseUTC(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseUTC(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"2026-12-06T03:04:05", "2026-12-06T03:04:05+01:00", "2026-12-06T03:04:05-05:00", "2026-12-06T03:04:05z",
		"2026-12-06T03:04:05,123Z", "2026-12-06T03:04:05.Z", "2026-12-06T03:04:05.12aZ", "2026-12-06 03:04:05Z",
		"2026-12-06T03:04Z", "26-12-06T03:04:05Z", "2026-12-06T03:04:05+0000", "Z", "+00:00", "",
	} {
		if got, err := parseUTC(in); err == nil {
			t.Errorf("parseUTC(%q) = %v, want an error", in, got)
		}
	}
}
