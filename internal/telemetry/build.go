package telemetry

import (
	"github.com/gatehouse/gatehouse/internal/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
)

// newBuildInfo is gatehouse_build_info: always 1, its labels naming the
// running build, so that a dashboard can tell instances apart by version
// and a query can join it (`* on(instance) group_left(version)`).
func newBuildInfo(bi buildinfo.Info) prometheus.Gauge {
	rev := bi.Revision
	if bi.Modified && rev != "" {
		rev += "-dirty"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_build_info",
		Help: "Always 1; the labels name the running build: module version, VCS revision (\"-dirty\" when built from a modified tree, \"\" when unknown) and Go version.",
		ConstLabels: prometheus.Labels{
			"version":   bi.Version,
			"revision":  rev,
			"goversion": bi.GoVersion,
		},
	})
	g.Set(1)
	return g
}
