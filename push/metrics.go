package push

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queued   prometheus.Counter
	depth    prometheus.Gauge
	outbox   prometheus.Gauge
	sent     *prometheus.CounterVec // provider
	failed   *prometheus.CounterVec // provider, reason
	removed  *prometheus.CounterVec // provider
	skipped  *prometheus.CounterVec // reason
	retried  prometheus.Counter
	latency  prometheus.Histogram
	acksSeen prometheus.Counter
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{Name: "mqim_push_jobs_queued_total",
			Help: "Push jobs handed from the outbox to the work queue."}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mqim_push_queue_depth",
			Help: "Push jobs in the work queue (waiting, or retried while a provider is down)."}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mqim_push_outbox_pending",
			Help: "Push candidates in the store's outbox not yet in the work queue (grows when the queue is full)."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_push_sent_total",
			Help: "Notifications a provider accepted."}, []string{"provider"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_push_failed_total",
			Help: "Failed provider requests, by provider and the provider's reason."}, []string{"provider", "reason"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_push_tokens_removed_total",
			Help: "Registrations removed because the provider refused the token."}, []string{"provider"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_push_skipped_total",
			Help: "Push jobs that notified nobody, by why (acked, muted, policy, folded, no_device, duplicate)."}, []string{"reason"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Name: "mqim_push_jobs_retried_total",
			Help: "Push jobs put back in the queue to retry later."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mqim_push_latency_seconds",
			Help:    "From the commit of a message to the provider accepting its notification.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}),
		acksSeen: prometheus.NewCounter(prometheus.CounterOpts{Name: "mqim_push_delivery_acks_total",
			Help: "PUBACKs of inbox and group deliveries recorded for the push-after rule."}),
	}
	if r != nil {
		r.MustRegister(m.queued, m.depth, m.outbox, m.sent, m.failed, m.removed, m.skipped, m.retried, m.latency, m.acksSeen)
	}
	return m
}
