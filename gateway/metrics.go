package gateway

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/comfypod/comfypod/gateway/store"
)

// metrics are the service's Prometheus metrics, registered in one registry
// per service (no global state).
type metrics struct {
	reg *prometheus.Registry

	accepted    prometheus.Counter
	pruned      prometheus.Counter
	finished    *prometheus.CounterVec
	dispatch    prometheus.Histogram
	duration    *prometheus.HistogramVec
	runpodErrs  *prometheus.CounterVec
	runpodCalls *prometheus.CounterVec
	watching    prometheus.GaugeFunc
	submitting  prometheus.Gauge
	http        *prometheus.HistogramVec
	workers     *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry, s *Service) (*metrics, error) {
	own := reg == nil
	if own {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "comfypod_jobs_accepted_total", Help: "Jobs accepted by POST /v1/jobs on this replica.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "comfypod_jobs_pruned_total", Help: "Ended jobs this replica deleted, with their files, past the retention.",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfypod_jobs_finished_total", Help: "Jobs this replica saw end, by final status.",
		}, []string{"status"}),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "comfypod_dispatch_latency_seconds",
			Help:    "Time from accepting a job to RunPod holding it (queue wait included).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "comfypod_job_duration_seconds",
			Help:    "Time from accepting a job to its end, by final status.",
			Buckets: []float64{1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 360, 600},
		}, []string{"status"}),
		runpodErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfypod_runpod_errors_total", Help: "RunPod calls that failed (after the client's retries), by operation.",
		}, []string{"op"}),
		runpodCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comfypod_runpod_calls_total", Help: "RunPod calls made, by operation.",
		}, []string{"op"}),
		submitting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "comfypod_jobs_submitting", Help: "Submissions to RunPod in progress on this replica.",
		}),
		http: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "comfypod_http_request_duration_seconds",
			Help:    "HTTP request durations, by method, route and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "code"}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "comfypod_runpod_workers", Help: "The endpoint's workers by state, as /health last said.",
		}, []string{"state"}),
	}
	m.watching = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "comfypod_jobs_in_flight", Help: "Jobs at RunPod this replica watches.",
	}, func() float64 { return float64(s.watch.size()) })
	cs := []prometheus.Collector{m.accepted, m.pruned, m.finished, m.dispatch, m.duration, m.runpodErrs, m.runpodCalls,
		m.watching, m.submitting, m.http, m.workers, &jobsCollector{s: s}}
	if own {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) jobFinished(j *store.Job) {
	st := string(statusOf(j))
	m.finished.WithLabelValues(st).Inc()
	if !j.FinishedAt.IsZero() {
		m.duration.WithLabelValues(st).Observe(j.FinishedAt.Sub(j.CreatedAt).Seconds())
	}
}

func (m *metrics) observeHTTP(method, route string, code int, d time.Duration) {
	m.http.WithLabelValues(method, route, strconv.Itoa(code)).Observe(d.Seconds())
}

// jobsCollector reports the jobs that have not ended, by state, read from the
// store at scrape time: the same figures on every replica.
type jobsCollector struct {
	s *Service
}

var jobsDesc = prometheus.NewDesc("comfypod_jobs", "Jobs that have not ended, by state, over every replica.", []string{"state"}, nil)

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.s.life), 2*time.Second)
	defer cancel()
	counts, err := c.s.st.CountActive(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for _, st := range store.States() {
		if st.Terminal() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}
