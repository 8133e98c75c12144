// Package buildinfo says which build of Gatehouse is running: the module
// version, the VCS revision and the Go version, from the build
// information the Go toolchain embeds (debug.ReadBuildInfo) and the
// values a release build stamps with -ldflags. `gatehouse version` prints
// it and the gatehouse_build_info metric carries it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
)

// Info is one build's identity.
type Info struct {
	Version   string // module version, "(devel)" for a build from a checkout
	Revision  string // VCS revision; "" when unknown
	Modified  bool   // the work tree had uncommitted changes
	Time      string // build time (ldflags); "" when unknown
	Committed string // the revision's commit time (vcs.time); "" when unknown
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// stamp holds the ldflags values Stamp recorded: version, revision, build
// time.
var stamp atomic.Pointer[[3]string]

// Stamp records the values a release build sets with -ldflags -X (they
// live in package main, where scripts/release.sh and the Dockerfile set
// them), so that Get reports them wherever it is called. The binary's
// main calls it once, at init.
func Stamp(version, revision, buildTime string) {
	stamp.Store(&[3]string{version, revision, buildTime})
}

// Get returns the running build's Info: the embedded build information
// with the stamped values (Stamp) over it.
func Get() Info {
	var s [3]string
	if p := stamp.Load(); p != nil {
		s = *p
	}
	return Combine(s[0], s[1], s[2])
}

// Combine reads the embedded build information and lays the ldflags
// values over it: a non-empty version, revision or buildTime wins over
// the embedded one. A revision ending in "-dirty" (as `git describe
// --dirty` writes it) is reported without the suffix and as Modified.
func Combine(version, revision, buildTime string) Info {
	v := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		v.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Committed = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	if revision != "" {
		// A release build states its revision, and that it was clean:
		// scripts/release.sh refuses a modified tree unless told.
		v.Revision = strings.TrimSuffix(revision, "-dirty")
		v.Modified = strings.HasSuffix(revision, "-dirty")
	}
	if buildTime != "" {
		v.Time = buildTime
	}
	return v
}
