package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/queue"
	"scanagent/test/fakeplatform/platform"
)

// oldFamilies are the families the hand-written exposition had, with their
// types: their names, types and labels are an interface (dashboards,
// alerts, the README).
var oldFamilies = map[string]dto.MetricType{
	"scanagent_his_clients":                  dto.MetricType_GAUGE,
	"scanagent_scans_total":                  dto.MetricType_COUNTER,
	"scanagent_reports_queued_total":         dto.MetricType_COUNTER,
	"scanagent_reports_refused_total":        dto.MetricType_COUNTER,
	"scanagent_his_handoffs_total":           dto.MetricType_COUNTER,
	"scanagent_source_connected":             dto.MetricType_GAUGE,
	"scanagent_platform_breaker_open":        dto.MetricType_GAUGE,
	"scanagent_platform_token_age_seconds":   dto.MetricType_GAUGE,
	"scanagent_queue_depth":                  dto.MetricType_GAUGE,
	"scanagent_queue_oldest_age_seconds":     dto.MetricType_GAUGE,
	"scanagent_queue_dead_letters":           dto.MetricType_GAUGE,
	"scanagent_queue_delivered_total":        dto.MetricType_COUNTER,
	"scanagent_queue_retries_total":          dto.MetricType_COUNTER,
	"scanagent_queue_dropped_total":          dto.MetricType_COUNTER,
	"scanagent_queue_file_bytes":             dto.MetricType_GAUGE,
	"scanagent_queue_damaged":                dto.MetricType_GAUGE,
	"scanagent_queue_salvaged_records":       dto.MetricType_GAUGE,
	"scanagent_queue_lost_records":           dto.MetricType_GAUGE,
	"scanagent_queue_disk_full":              dto.MetricType_GAUGE,
	"scanagent_queue_refused_no_space_total": dto.MetricType_COUNTER,
}

// metricsConfig is an agent with two scanners (a reports its scans), the
// local API with a token for remote peers, and an outbox, talking to the
// fake platform at url ("": platform off, no outbox).
func metricsConfig(t *testing.T, url string) config.Config {
	t.Helper()
	dir := t.TempDir()
	platformConf := "mode = \"off\""
	if url != "" {
		d := platform.Defaults()
		platformConf = fmt.Sprintf(`app_id = %q
app_secret = %q
hospital_id = %q
retries = 0
use_city_code = "350200"
use_city_name = "厦门市"
hospital_code = "90003"
hospital_name = "示例医院"`, d.AppID, d.AppSecret, d.HospitalID)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`[agent]
data_dir = %q
terminal_id = "t1"
[platform]
%s
[queue]
path = %q
[his.api]
enabled = true
listen = "127.0.0.1:0"
token = "remote-token-0123456789"
[[source]]
name = "a"
port = "/dev/null-a"
scene = "010101"
card_channel = "0100"
department = "内科"
[[source]]
name = "b"
port = "/dev/null-b"
`, dir, platformConf, filepath.Join(dir, "q.db"))), "m.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if url != "" {
		cfg.Platform.BaseURL = url + strings.TrimSuffix(platform.APIPrefix, "/")
		cfg.Platform.TokenURL = url + platform.TokenPath
	}
	return cfg
}

// start builds the agent of cfg as Run does (prev as a reload carries it),
// with the outbox attached, and lets its scanners report their state.
func start(t *testing.T, cfg config.Config, ob *queue.Queue, prev *carried) *agent {
	t.Helper()
	a, err := build(cfg, zerolog.Nop(), prev)
	if err != nil {
		t.Fatal(err)
	}
	a.attach(ob)
	a.obs.follow(a)
	ctx, cancel := context.WithCancel(context.Background())
	go a.sup.Run(ctx, a.sources, func(card.Scan) {})
	time.Sleep(50 * time.Millisecond)
	cancel()
	return a
}

// scrape GETs /metrics from h as a loopback peer.
func scrape(t *testing.T, h http.Handler) []byte {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, body)
	}
	return body
}

// lint checks an exposition as `promtool check metrics` does.
func lint(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("unparsable exposition: %v\n%s", err, body)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// sample returns the metric of family with exactly labels, or nil.
func sample(families map[string]*dto.MetricFamily, family string, labels ...string) *dto.Metric {
	mf := families[family]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName(), l.GetValue())
		}
		if strings.Join(got, "\x00") == strings.Join(labels, "\x00") {
			return m
		}
	}
	return nil
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// /metrics, served by the local API under its rules, carries every family
// of the hand-written exposition with its type, the latency histograms of
// a handled and delivered scan, and the Go and process collectors; it
// passes the linter of `promtool check metrics`.
func TestMetricsExposition(t *testing.T) {
	fake := platform.New(platform.Config{})
	psrv := httptest.NewServer(fake.Handler())
	defer psrv.Close()
	cfg := metricsConfig(t, psrv.URL)
	ob, err := openOutbox(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	a := start(t, cfg, ob, nil)

	ctx := context.Background()
	a.pipe.Handle(ctx, card.Scan{Data: []byte(platform.BuiltinCards()[1].QRCodeText), Source: "a", At: time.Now()})
	stop := a.startDelivery(ctx)
	for deadline := time.Now().Add(5 * time.Second); ob.Stats().Delivered < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("report not delivered: %+v", ob.Stats())
		}
	}
	stop()

	body := scrape(t, a.api.Handler())
	families := lint(t, body)
	for name, typ := range oldFamilies {
		if mf := families[name]; mf == nil || mf.GetType() != typ {
			t.Errorf("family %s: %v, want a %s", name, mf, typ)
		}
	}
	for _, c := range []struct {
		family string
		labels []string
		value  float64
	}{
		{"scanagent_scans_total", []string{"outcome", "verified"}, 1},
		{"scanagent_reports_queued_total", nil, 1},
		{"scanagent_his_handoffs_total", []string{"result", "delivered", "sink", "api"}, 1},
		{"scanagent_source_connected", []string{"source", "b"}, 0},
		{"scanagent_queue_delivered_total", nil, 1},
		{"scanagent_his_clients", nil, 0},
	} {
		m := sample(families, c.family, c.labels...)
		if m == nil {
			t.Errorf("no %s%q", c.family, c.labels)
			continue
		}
		if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); v != c.value {
			t.Errorf("%s%q = %v, want %v", c.family, c.labels, v, c.value)
		}
	}
	for _, c := range []struct {
		family string
		labels []string
	}{
		{"scanagent_handoff_seconds", []string{"kind", "ehc_static", "source", "a"}},
		{"scanagent_platform_call_seconds", []string{"api", "getAppToken", "result", "ok"}},
		{"scanagent_platform_call_seconds", []string{"api", "getHealthCardByQRCode", "result", "ok"}},
		{"scanagent_platform_call_seconds", []string{"api", "reportHISData", "result", "ok"}},
		{"scanagent_outbox_enqueue_seconds", []string{"kind", "report"}},
		{"scanagent_outbox_delivery_seconds", []string{"kind", "report", "outcome", "delivered"}},
	} {
		m := sample(families, c.family, c.labels...)
		if m == nil || m.GetHistogram().GetSampleCount() != 1 || m.GetHistogram().GetBucket()[0].GetUpperBound() != latencyBuckets[0] {
			t.Errorf("histogram %s%q = %v, want one observation", c.family, c.labels, m)
		}
	}
	collectors := []string{"go_goroutines", "go_memstats_alloc_bytes"}
	if runtime.GOOS == "linux" || runtime.GOOS == "windows" {
		collectors = append(collectors, "process_cpu_seconds_total", "process_resident_memory_bytes")
	}
	for _, name := range collectors {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if problems, err := testutil.GatherAndLint(a.obs.reg); err != nil || len(problems) > 0 {
		t.Errorf("GatherAndLint: %v %v", problems, err)
	}

	// The same rules as the rest of the API: a remote peer needs the token.
	for auth, status := range map[string]int{"": http.StatusUnauthorized, "Bearer remote-token-0123456789": http.StatusOK} {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8470/metrics", nil)
		r.RemoteAddr = "10.1.2.3:5555"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		a.api.Handler().ServeHTTP(w, r)
		if w.Code != status {
			t.Errorf("remote /metrics with %q: %d, want %d", auth, w.Code, status)
		}
	}
}

// A reload builds a new agent on the same registry: counters go on from
// where they were (the pipeline's and sinks' are carried, the outbox stays
// open) and histograms keep their observations.
func TestMetricsSurviveReload(t *testing.T) {
	cfg := metricsConfig(t, "")
	a := start(t, cfg, nil, nil)
	ctx := context.Background()
	ids := []string{"432901198810228888", "11010519491231002X", "350203200002290029"}
	scan := func(a *agent, i int) { // ID numbers: handed over unverified, no platform
		a.pipe.Handle(ctx, card.Scan{Data: []byte(ids[i]), Source: "a", At: time.Now()})
	}
	scan(a, 0)
	scan(a, 1)
	before := gather(t, a.obs.reg)

	b := start(t, cfg, nil, a.carry())
	if b.obs != a.obs {
		t.Fatal("the reloaded agent has a registry of its own")
	}
	after := gather(t, b.obs.reg)
	verified := func(f map[string]*dto.MetricFamily) float64 {
		return sample(f, "scanagent_scans_total", "outcome", "unverified").GetCounter().GetValue()
	}
	delivered := func(f map[string]*dto.MetricFamily) float64 {
		return sample(f, "scanagent_his_handoffs_total", "result", "delivered", "sink", "api").GetCounter().GetValue()
	}
	handoffs := func(f map[string]*dto.MetricFamily) uint64 {
		return sample(f, "scanagent_handoff_seconds", "kind", "id_card", "source", "a").GetHistogram().GetSampleCount()
	}
	if verified(before) != 2 || delivered(before) != 2 || handoffs(before) != 2 {
		t.Fatalf("before the reload: %v scans, handed off %v, observed %v; want 2 each", verified(before), delivered(before), handoffs(before))
	}
	if verified(after) != 2 || delivered(after) != 2 || handoffs(after) != 2 {
		t.Fatalf("after the reload: %v scans, handed off %v, observed %v; want 2 each", verified(after), delivered(after), handoffs(after))
	}
	scan(b, 2)
	after = gather(t, b.obs.reg)
	if verified(after) != 3 || delivered(after) != 3 || handoffs(after) != 3 {
		t.Fatalf("a scan after the reload: %v scans, handed off %v, observed %v; want 3 each", verified(after), delivered(after), handoffs(after))
	}
	// The page is served by the new agent's API, from the same registry.
	families := lint(t, scrape(t, b.api.Handler()))
	if v := sample(families, "scanagent_scans_total", "outcome", "unverified").GetCounter().GetValue(); v != 3 {
		t.Fatalf("scraped after the reload: %v scans, want 3", v)
	}
}

// The decorators measure what they wrap and change nothing of it.
func TestTimedSenderAndOutbox(t *testing.T) {
	o := newObserver()
	s := o.sender(senderFunc(func(kind string) queue.Verdict { return queue.Verdict{Outcome: queue.Pause, Reason: "10034"} }))
	if v := s.Send(context.Background(), card.RecordBind, nil, "r1"); v.Outcome != queue.Pause || v.Reason != "10034" {
		t.Fatalf("verdict = %+v", v)
	}
	s.Send(context.Background(), "garbage", nil, "r2")
	ob := o.outbox(outboxFunc(func(kind string) (uint64, error) {
		if kind == card.RecordBind {
			return 0, queue.ErrFull
		}
		return 7, nil
	}))
	if seq, err := ob.EnqueueKeyed(context.Background(), card.RecordReport, "k", nil); seq != 7 || err != nil {
		t.Fatalf("enqueue = %d %v", seq, err)
	}
	if _, err := ob.EnqueueKeyed(context.Background(), card.RecordBind, "k", nil); err != queue.ErrFull {
		t.Fatalf("refused enqueue = %v", err)
	}
	f := gather(t, o.reg)
	for _, c := range []struct {
		family string
		labels []string
	}{
		{"scanagent_outbox_delivery_seconds", []string{"kind", "bind", "outcome", "pause"}},
		{"scanagent_outbox_delivery_seconds", []string{"kind", "other", "outcome", "pause"}},
		{"scanagent_outbox_enqueue_seconds", []string{"kind", "report"}},
	} {
		if n := sample(f, c.family, c.labels...).GetHistogram().GetSampleCount(); n != 1 {
			t.Errorf("%s%q observed %d times, want 1", c.family, c.labels, n)
		}
	}
	if n := testutil.CollectAndCount(o.enqueue); n != 1 {
		t.Errorf("enqueue series = %d, want 1 (a refused record is not a commit)", n)
	}
	var none *observer
	if _, ok := none.sender(senderFunc(nil)).(senderFunc); !ok {
		t.Error("without an observer the sender is not passed through as it is")
	}
	if _, ok := none.outbox(outboxFunc(nil)).(outboxFunc); !ok {
		t.Error("without an observer the outbox is not passed through as it is")
	}
}

type senderFunc func(kind string) queue.Verdict

func (f senderFunc) Send(_ context.Context, kind string, _ []byte, _ string) queue.Verdict {
	return f(kind)
}

type outboxFunc func(kind string) (uint64, error)

func (f outboxFunc) EnqueueKeyed(_ context.Context, kind, _ string, _ []byte) (uint64, error) {
	return f(kind)
}

func (f outboxFunc) Intend(string, string, []byte) (func(), error) { return func() {}, nil }
