package im

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sends         *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	queued        prometheus.Gauge
	rpcs          *prometheus.CounterVec
	// lastSeenDropped counts disconnects whose last seen was not written
	// because too many writes were in flight (presence.go).
	lastSeenDropped prometheus.Counter
	// panics counts panics recovered on goroutines spawned for a
	// session (service.go, recoverSession); the label says "ingest", as
	// before the core had its own package.
	panics prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqim_sends_total", Help: "Sends by result (ok, duplicate, or an error code)."}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mqim_commit_batch_size", Help: "Sends per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mqim_commit_seconds", Help: "Duration of a group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqim_ingest_queued", Help: "Operations waiting for the committer."}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqim_rpcs_total", Help: "RPC requests by method and result."}, []string{"method", "result"}),
		lastSeenDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_last_seen_dropped_total", Help: "Disconnects whose last seen was not recorded (too many writes in flight)."}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_connection_panics_total", Help: "Panics recovered while handling a connection (each closed that connection).",
			ConstLabels: prometheus.Labels{"where": "ingest"}}),
	}
	if reg != nil {
		reg.MustRegister(m.sends, m.batchSize, m.commitSeconds, m.queued, m.rpcs, m.lastSeenDropped, m.panics)
	}
	return m
}
