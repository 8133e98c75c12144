package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the release build (scripts/release.sh) with
//
//	-ldflags "-X main.version=v1.2.3 -X main.revision=SHA -X main.buildTime=RFC3339"
//
// Empty: taken from the build information the Go toolchain embeds
// (debug.ReadBuildInfo): the module version for `go install module@v1.2.3`,
// the VCS revision, time and modified flag for a build from a checkout.
var (
	version   string
	revision  string
	buildTime string
)

// buildVersion is what `gatehouse version` reports.
type buildVersion struct {
	Version   string // module version, "(devel)" for a build from a checkout
	Revision  string // VCS revision; "" when unknown
	Modified  bool   // the work tree had uncommitted changes
	Time      string // build time (ldflags); "" when unknown
	Committed string // the revision's commit time (vcs.time); "" when unknown
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// readVersion combines the ldflags overrides with the embedded build
// information; an ldflags value wins over the embedded one.
func readVersion() buildVersion {
	v := buildVersion{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
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

// print writes the version as `gatehouse version` shows it:
//
//	gatehouse v1.2.3
//	revision: 0123abcd (modified)
//	built:    2026-01-02T03:04:05Z
//	commit:   2026-01-01T10:00:00Z
//	go:       go1.26.0 linux/amd64
//
// Unknown lines (no revision in a `go install` build) are left out.
func (v buildVersion) print(w io.Writer) {
	fmt.Fprintf(w, "gatehouse %s\n", v.Version)
	if v.Revision != "" {
		mod := ""
		if v.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(w, "revision: %s%s\n", v.Revision, mod)
	}
	if v.Time != "" {
		fmt.Fprintf(w, "built:    %s\n", v.Time)
	}
	if v.Committed != "" {
		fmt.Fprintf(w, "commit:   %s\n", v.Committed)
	}
	fmt.Fprintf(w, "go:       %s %s\n", v.GoVersion, v.Platform)
}
