package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	tests := []struct {
		name        string
		live, floor uint64
		base, want  int
	}{
		{"small heap: goal raised to the floor", 4 * MiB, 32 * MiB, 100, 700},
		{"rounded up", 3 * MiB, 32 * MiB, 100, 967},
		{"half the floor: the base already reaches it", 16 * MiB, 32 * MiB, 100, 100},
		{"large heap: base", 200 * MiB, 32 * MiB, 100, 100},
		{"tiny heap: capped", 1024, 32 * MiB, 100, MaxPercent},
		{"nothing live yet: base", 0, 32 * MiB, 100, 100},
		{"collection off stays off", 4 * MiB, 32 * MiB, -1, -1},
		{"a higher base is kept", 4 * MiB, 32 * MiB, 800, 800},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Percent(tc.live, tc.floor, tc.base)
			if got != tc.want {
				t.Fatalf("Percent(%d, %d, %d) = %d, want %d", tc.live, tc.floor, tc.base, got, tc.want)
			}
			if tc.live > 0 && got > 0 && got < MaxPercent && tc.live*uint64(100+got)/100 < tc.floor {
				t.Errorf("goal %d below the floor %d", tc.live*uint64(100+got)/100, tc.floor)
			}
		})
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestStartLeavesGOGCSet: with GOGC in the environment, Start does nothing.
func TestStartLeavesGOGCSet(t *testing.T) {
	t.Setenv("GOGC", "") // set, so Start must leave GOGC alone
	stop := Start(1 << 30)
	defer stop()
	// A tuner that ran would raise GOGC within a collection or two (as
	// TestStartTunes sees): give it as long.
	for range 20 {
		runtime.GC()
		time.Sleep(time.Millisecond)
		if g := gogc(); g != 100 {
			t.Fatalf("with GOGC in the environment, GOGC = %d, want 100 untouched", g)
		}
	}
}

// TestStartTunes: on this test's small heap a 1 GiB floor raises GOGC to
// the cap after a collection; stop puts the base back.
func TestStartTunes(t *testing.T) {
	// Not parallel: GOGC is process-wide.
	if g := gogc(); g != 100 {
		t.Skipf("GOGC is %d in this process, not the default", g)
	}
	stop := Start(1 << 30)
	deadline := time.Now().Add(60 * time.Second)
	for gogc() == 100 && time.Now().Before(deadline) {
		runtime.GC() // the tuning follows a collection
		time.Sleep(time.Millisecond)
	}
	if g := gogc(); g != MaxPercent {
		t.Errorf("GOGC = %d with a 1 GiB floor over a small heap, want %d", g, MaxPercent)
	}
	stop()
	if g := gogc(); g != 100 {
		t.Errorf("after stop GOGC = %d, want 100", g)
	}
}

func memoryLimit() int64 { return debug.SetMemoryLimit(-1) }

// TestLoading: GOGC and the soft memory limit are relaxed until the last
// of overlapping Loadings is done, and then put back; a running tuner
// leaves them alone meanwhile.
func TestLoading(t *testing.T) {
	if g := gogc(); g != 100 {
		t.Skipf("GOGC is %d in this process, not the default", g)
	}
	limit := memoryLimit()
	stop := Start(1 << 30)
	defer stop()
	tuned := time.Now().Add(60 * time.Second)
	for gogc() == 100 && time.Now().Before(tuned) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	before := gogc()
	done1 := Loading()
	done2 := Loading()
	for range 5 {
		runtime.GC() // the tuner must not take GOGC back
		time.Sleep(time.Millisecond)
	}
	if g := gogc(); g != LoadPercent {
		t.Errorf("while loading GOGC = %d, want %d", g, LoadPercent)
	}
	if l := memoryLimit(); l != min(limit, LoadLimit) {
		t.Errorf("while loading the memory limit is %d, want %d", l, min(limit, LoadLimit))
	}
	done1()
	done1() // twice is once
	if g := gogc(); g != LoadPercent {
		t.Errorf("with one Loading left GOGC = %d, want %d", g, LoadPercent)
	}
	done2()
	if g := gogc(); g != before {
		t.Errorf("after loading GOGC = %d, want %d back", g, before)
	}
	if l := memoryLimit(); l != limit {
		t.Errorf("after loading the memory limit is %d, want %d back", l, limit)
	}
}

// TestLoadingLeavesGOGCSet: with GOGC in the environment, Loading does
// nothing.
func TestLoadingLeavesGOGCSet(t *testing.T) {
	t.Setenv("GOGC", "")
	done := Loading()
	defer done()
	if g := gogc(); g != 100 {
		t.Fatalf("with GOGC in the environment, GOGC = %d, want 100 untouched", g)
	}
}
