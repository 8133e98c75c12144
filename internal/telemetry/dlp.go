package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newDLPFindings() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_dlp_findings_total",
		Help: "Sensitive data found in responses by the dlp policy, by route, detector and the action taken (mask, block, log).",
	}, []string{"route", "detector", "action"})
}

// DLPFinding returns the counter of the dlp policy's findings of detector
// on route handled with action (mask, block or log), resolved once at
// build time so that counting does no label hashing. A nil m counts in
// Discard(), so the result is never nil.
func (m *Metrics) DLPFinding(route, detector, action string) prometheus.Counter {
	if m == nil {
		m = Discard()
	}
	return m.dlpFindings.WithLabelValues(route, detector, action)
}
