package buildinfo

import (
	"runtime"
	"testing"
)

func TestCombine(t *testing.T) {
	for _, c := range []struct {
		name                    string
		version, revision, time string
		check                   func(t *testing.T, i Info)
	}{
		{"embedded", "", "", "", func(t *testing.T, i Info) {
			if i.Version == "" || i.GoVersion != runtime.Version() || i.Platform != runtime.GOOS+"/"+runtime.GOARCH || i.Time != "" {
				t.Errorf("%+v", i)
			}
		}},
		{"stamped", "v1.2.3", "0123abcd", "2026-01-02T03:04:05Z", func(t *testing.T, i Info) {
			if i.Version != "v1.2.3" || i.Revision != "0123abcd" || i.Modified || i.Time != "2026-01-02T03:04:05Z" {
				t.Errorf("%+v", i)
			}
		}},
		{"dirty", "", "0123abcd-dirty", "", func(t *testing.T, i Info) {
			if i.Revision != "0123abcd" || !i.Modified {
				t.Errorf("%+v", i)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) { c.check(t, Combine(c.version, c.revision, c.time)) })
	}
}

// TestStamp: Get reports what Stamp recorded.
func TestStamp(t *testing.T) {
	defer stamp.Store(stamp.Load())
	Stamp("v9.9.9", "feedbeef", "")
	if i := Get(); i.Version != "v9.9.9" || i.Revision != "feedbeef" {
		t.Errorf("%+v", i)
	}
}
