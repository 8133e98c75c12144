package main

import (
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/internal/buildinfo"
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

func init() {
	// The metrics (gatehouse_build_info) report the same build as
	// `gatehouse version`.
	buildinfo.Stamp(version, revision, buildTime)
}

// buildVersion is what `gatehouse version` reports.
type buildVersion struct{ buildinfo.Info }

// readVersion combines the ldflags overrides with the embedded build
// information; an ldflags value wins over the embedded one.
func readVersion() buildVersion {
	return buildVersion{buildinfo.Combine(version, revision, buildTime)}
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
