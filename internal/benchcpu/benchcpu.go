//go:build unix

// Package benchcpu reports a benchmark's process CPU time per iteration
// (cpu-ns/op) beside its wall time. On a machine shared with other work,
// wall time per op mostly measures the neighbours, CPU time much less so;
// and a benchmark whose work spreads over goroutines on several cores (a
// transport's read and write loops) shows its cost only in CPU time.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Clock measures the process's CPU time (all threads, the garbage
// collector's included) from Start.
type Clock struct {
	b  *testing.B
	t0 time.Duration
}

// Start starts measuring; call it just before the b.Loop loop.
func Start(b *testing.B) Clock { return Clock{b, processCPU(b)} }

// Report reports the CPU time per iteration since Start as cpu-ns/op; call
// it after the b.Loop loop, when b.N is the number of iterations.
func (c Clock) Report() {
	c.b.ReportMetric(float64(processCPU(c.b)-c.t0)/float64(c.b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
