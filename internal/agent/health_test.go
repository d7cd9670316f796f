package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
)

func TestHealth(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, card.CST)
	up := []scanner.State{{Name: "counter", Connected: true, Since: now.Add(-time.Hour)}}
	direct := &verify.Status{Mode: "direct"}
	empty := &queue.Stats{Pending: map[string]int{}}
	queued := func(n int, age time.Duration) *queue.Stats {
		return &queue.Stats{Pending: map[string]int{card.RecordReport: n}, OldestAge: age, Oldest: now.Add(-age)}
	}
	no, yes := false, true
	type want struct {
		level string
		codes []string // in order
		// texts each appear in some reason's message
		texts []string
	}
	tests := []struct {
		name string
		in   healthInput
		want want
	}{
		{"healthy", healthInput{Sources: up, Platform: direct, Queue: empty}, want{HealthOK, nil, nil}},
		{"healthy without platform, outbox or scanners", healthInput{}, want{HealthOK, nil, nil}},
		{"setup says configured", healthInput{Setup: &setupState{Configured: &yes}, Sources: up}, want{HealthOK, nil, nil}},
		{"young queue is fine", healthInput{Sources: up, Platform: direct, Queue: queued(3, 4*time.Minute)}, want{HealthOK, nil, nil}},
		{"not configured wins over everything",
			healthInput{Setup: &setupState{Configured: &no, Missing: []string{"platform.app_id", "platform.app_secret"}, Hint: "edit /etc/scanagent/scanagent.toml, then systemctl restart scanagent"},
				Sources: []scanner.State{{Name: "counter"}}, Queue: &queue.Stats{Space: queue.Space{Full: true}}},
			want{HealthUnconfigured, []string{ReasonNotConfigured}, []string{"not configured yet: fill in platform.app_id, platform.app_secret; edit /etc/scanagent/scanagent.toml, then systemctl restart scanagent"}}},
		{"scanner unplugged",
			healthInput{Sources: []scanner.State{{Name: "kiosk", Connected: true}, {Name: "counter", Since: now.Add(-3 * time.Minute), LastError: "open /dev/ttyACM0: no such file or directory"}}, Platform: direct, Queue: empty},
			want{HealthCritical, []string{ReasonScannerDisconnected}, []string{`scanner "counter" not connected for 3 min (open /dev/ttyACM0: no such file or directory)`, "scanagent ports"}}},
		{"a scanner opening for the first time is not unplugged yet",
			healthInput{Sources: []scanner.State{{Name: "counter", Since: now.Add(-time.Second)}}}, want{HealthOK, nil, nil}},
		{"a scanner that never opened",
			healthInput{Sources: []scanner.State{{Name: "counter", Since: now.Add(-4 * time.Second)}}}, want{HealthCritical, []string{ReasonScannerDisconnected}, nil}},
		{"outbox damaged",
			healthInput{Sources: up, Queue: &queue.Stats{Recovery: &queue.Recovery{File: "/var/lib/scanagent/outbox.db.corrupt-x", Salvaged: 12, Lost: 1}}},
			want{HealthCritical, []string{ReasonOutboxDamaged}, []string{"moved to /var/lib/scanagent/outbox.db.corrupt-x: 12 records salvaged, 1 lost"}}},
		{"outbox damaged, losses unknown",
			healthInput{Queue: &queue.Stats{Recovery: &queue.Recovery{File: "f", LostUnknown: true}}},
			want{HealthCritical, []string{ReasonOutboxDamaged}, []string{"an unknown number lost"}}},
		{"disk full",
			healthInput{Sources: up, Queue: &queue.Stats{Space: queue.Space{Full: true, Since: now.Add(-10 * time.Minute), Refused: 4}}},
			want{HealthCritical, []string{ReasonDiskFull}, []string{"refused (4 so far)", "free space"}}},
		{"platform unreachable with reports queued",
			healthInput{Sources: up, Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{BreakerOpen: true, Failures: 3, OpenUntil: now.Add(30 * time.Second)}}, Queue: queued(12, 7*time.Minute)},
			want{HealthDegraded, []string{ReasonPlatformUnreachable, ReasonQueueBacklog}, []string{"the platform is unreachable (3 calls failed in a row, next try 2026-11-23 10:00 CST); 12 reports queued, the oldest 7 min", "12 reports queued, the oldest 7 min"}}},
		{"last call failed: amber at once, even with a young queue",
			healthInput{Sources: up, Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{Failures: 1}}, Queue: queued(1, time.Second)},
			want{HealthDegraded, []string{ReasonPlatformUnreachable}, []string{"1 calls failed in a row)"}}},
		{"gateway unreachable",
			healthInput{Platform: &verify.Status{Mode: "gateway", GateState: verify.GateState{Failures: 2}}},
			want{HealthDegraded, []string{ReasonPlatformUnreachable}, []string{"the gateway is unreachable"}}},
		{"rate limited by the platform",
			healthInput{Sources: up, Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{Paused: map[string]time.Time{"reportHISData": now.Add(14 * time.Hour)}}}, Queue: queued(2, time.Minute)},
			want{HealthDegraded, []string{ReasonPlatformPaused}, []string{"reportHISData paused until 2026-11-24 00:00 CST"}}},
		{"an expired pause is no reason",
			healthInput{Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{Paused: map[string]time.Time{"reportHISData": now.Add(-time.Minute)}}}},
			want{HealthOK, nil, nil}},
		{"the outbox paused delivery",
			healthInput{Platform: direct, Queue: &queue.Stats{Pending: map[string]int{}, PausedUntil: map[string]time.Time{"report": now.Add(time.Hour)}}},
			want{HealthDegraded, []string{ReasonPlatformPaused}, []string{"report paused until 2026-11-23 11:00 CST"}}},
		{"the platform refuses the configuration",
			healthInput{Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{LastError: map[string]string{"reportHISData": "reportHISData: platform error 21006 签名错误 (fatal)", "verifyQRCode": "verifyQRCode: platform error 10008 健康卡授权码不存在 (rejected)"}}}},
			want{HealthDegraded, []string{ReasonPlatformRefused}, []string{"21006", "platform.app_secret"}}},
		{"a refused code is no platform problem",
			healthInput{Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{LastError: map[string]string{"getHealthCardByQRCode": "getHealthCardByQRCode: platform error 10008 健康卡授权码不存在 (rejected)"}}}},
			want{HealthOK, nil, nil}},
		{"dead letters",
			healthInput{Sources: up, Platform: direct, Queue: &queue.Stats{Pending: map[string]int{}, Dead: 2}},
			want{HealthDegraded, []string{ReasonDeadLetters}, []string{"2 reports refused by the platform", "scanagent queue retry"}}},
		{"Su Kang Code client in error never shows green",
			healthInput{Sources: up, Platform: direct, Queue: empty, SKM: &verify.SKMStatus{LastError: "skmScanVerify: HTTP 502 (retryable)", Since: now.Add(-2 * time.Minute)}},
			want{HealthDegraded, []string{ReasonSKMError}, []string{"Su Kang Code service is failing (skmScanVerify: HTTP 502 (retryable))"}}},
		{"Su Kang Code client fine", healthInput{Sources: up, SKM: &verify.SKMStatus{}}, want{HealthOK, nil, nil}},
		{"HIS push failing",
			healthInput{Sources: up, Sinks: []sinkHealth{{Name: "push", Failing: true, Failed: 5}, {Name: "hl7"}}},
			want{HealthDegraded, []string{ReasonHISFailing}, []string{"HTTP push to the HIS (his.push.url) failing (5 failed so far)"}}},
		{"red before amber",
			healthInput{Sources: []scanner.State{{Name: "b"}, {Name: "a"}}, Platform: &verify.Status{Mode: "direct", GateState: verify.GateState{Failures: 5}},
				Queue: &queue.Stats{Pending: map[string]int{"report": 1}, OldestAge: time.Hour, Dead: 1, Space: queue.Space{Full: true}}},
			want{HealthCritical, []string{ReasonScannerDisconnected, ReasonScannerDisconnected, ReasonDiskFull, ReasonPlatformUnreachable, ReasonQueueBacklog, ReasonDeadLetters}, []string{`scanner "a"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = now
			h := evaluate(tt.in)
			var codes []string
			for _, r := range h.Reasons {
				codes = append(codes, r.Code)
				wantSev := SeverityAmber
				if r.Code == ReasonScannerDisconnected || r.Code == ReasonOutboxDamaged || r.Code == ReasonDiskFull || r.Code == ReasonNotConfigured {
					wantSev = SeverityRed
				}
				if r.Severity != wantSev || r.Message == "" {
					t.Errorf("reason %s: severity %q (want %q), message %q", r.Code, r.Severity, wantSev, r.Message)
				}
			}
			if h.Level != tt.want.level || strings.Join(codes, ",") != strings.Join(tt.want.codes, ",") {
				t.Fatalf("health = %s %v, want %s %v", h.Level, codes, tt.want.level, tt.want.codes)
			}
			var msgs []string
			for _, r := range h.Reasons {
				msgs = append(msgs, r.Message)
			}
			all := strings.Join(msgs, "\n")
			for _, text := range tt.want.texts {
				if !strings.Contains(all, text) {
					t.Errorf("no reason says %q:\n%s", text, all)
				}
			}
			if h.Reasons == nil {
				t.Error("reasons must be [] when ok, not null")
			}
		})
	}
}

// The other part of the status (setup, /v1/status) is read by its JSON
// form: a map, a struct with the same JSON, or nothing (configured).
func TestHealthReadsSetupFromTheStatusMap(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup any
		level string
	}{
		{"absent", nil, HealthOK},
		{"configured", map[string]any{"configured": true}, HealthOK},
		{"not configured", map[string]any{"configured": false, "missing": []string{"platform.app_id"}, "hint": "edit x, then systemctl restart scanagent"}, HealthUnconfigured},
		{"a struct", struct {
			Configured bool     `json:"configured"`
			Missing    []string `json:"missing"`
		}{false, []string{"platform.gateway_url"}}, HealthUnconfigured},
		{"unreadable", func() {}, HealthOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]any{}
			if tt.setup != nil {
				m["setup"] = tt.setup
			}
			h := evaluate(healthInput{Now: time.Now(), Setup: setupOf(m["setup"])})
			if h.Level != tt.level {
				t.Fatalf("level %s, want %s (%+v)", h.Level, tt.level, h)
			}
			if tt.level == HealthUnconfigured && (h.Reasons[0].Severity != SeverityRed || h.Reasons[0].Detail["missing"] == nil) {
				t.Fatalf("reason %+v", h.Reasons[0])
			}
		})
	}
}

func TestSinkWatch(t *testing.T) {
	w := &sinkWatch{seen: map[*visit.SinkStats]*sinkSeen{}}
	s := &visit.SinkStats{}
	steps := []struct {
		delivered, failed int64
		failing           bool
	}{
		{0, 0, false},
		{3, 0, false},
		{3, 2, true},  // failures, no deliveries
		{3, 2, true},  // nothing new: still failing
		{4, 3, true},  // some failed since the last look
		{6, 3, false}, // deliveries only: working again
	}
	for i, st := range steps {
		s.Delivered.Store(st.delivered)
		s.Failed.Store(st.failed)
		if got := w.look(s); got != st.failing {
			t.Fatalf("step %d (%d delivered, %d failed): failing = %v", i, st.delivered, st.failed, got)
		}
	}
	// A first look trusts old failures only when the sink never delivered.
	old := &visit.SinkStats{}
	old.Delivered.Store(100)
	old.Failed.Store(2)
	if w.look(old) {
		t.Fatal("old failures of a sink that delivers since count as failing")
	}
	dead := &visit.SinkStats{}
	dead.Failed.Store(2)
	if !w.look(dead) {
		t.Fatal("a sink that never delivered and failed is not failing")
	}
}

// The Su Kang Code client keeps its last failure for the health, and drops
// it when the service answers again; a code the service refuses is an
// answer.
func TestSKMStatusFeedsHealth(t *testing.T) {
	status := http.StatusBadGateway
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		w.Write([]byte(`{"retcode":111,"msg":"二维码已失效"}`))
	}))
	defer srv.Close()
	skm := verify.NewSKM(verify.SKMOptions{BaseURL: srv.URL, ScanPath: "/scan", Cipher: "none", HTTP: srv.Client()})
	req := card.Request{Kind: card.KindSKM, Text: "https://x.jszwfw.gov.cn/?c=1"}
	if _, err := skm.Verify(context.Background(), req); err == nil {
		t.Fatal("502 verified")
	}
	st := skm.Status()
	if st.LastError == "" || st.Since.IsZero() {
		t.Fatalf("status after a 502: %+v", st)
	}
	if h := evaluate(healthInput{Now: time.Now(), SKM: &st}); h.Level != HealthDegraded || h.Reasons[0].Code != ReasonSKMError {
		t.Fatalf("health %+v", h)
	}
	status = http.StatusOK
	if _, err := skm.Verify(context.Background(), req); card.ClassOf(err) != card.Rejected {
		t.Fatalf("refused code: %v", err)
	}
	if st := skm.Status(); st.LastError != "" {
		t.Fatalf("an answer does not clear the error: %+v", st)
	}
}

// statusJSON builds an agent from the TOML (its data_dir a temporary one,
// given as %q) and returns its /v1/status JSON.
func statusJSON(t *testing.T, toml string) []byte {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(toml, t.TempDir())), "s.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a.status())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// /v1/status carries the health, in the JSON the page and the command
// line read.
func TestStatusCarriesHealth(t *testing.T) {
	b := statusJSON(t, "[agent]\ndata_dir = %q\n[platform]\nmode = \"off\"\n[his.api]\nenabled = false\n")
	var st struct {
		Health Health `json:"health"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Health.Level != HealthOK || st.Health.Reasons == nil {
		t.Fatalf("status %s", b)
	}
	if !strings.Contains(string(b), `"health":{"level":"ok","reasons":[]}`) {
		t.Fatalf("health JSON: %s", b)
	}
}

// A terminal with several gateways shows its breaker towards each in
// /v1/status.
func TestStatusShowsEachGateway(t *testing.T) {
	b := statusJSON(t, "[agent]\ndata_dir = %q\n[platform]\nmode = \"gateway\"\ngateway_urls = [\"http://10.0.0.1:8471\", \"https://10.0.0.2:8471\"]\n"+
		"gateway_token = \"terminal-token-0123456789abcdef\"\n[his.api]\nenabled = false\n")
	var st struct {
		Platform struct {
			Gateways []struct {
				URL         string `json:"url"`
				BreakerOpen bool   `json:"breakerOpen"`
			} `json:"gateways"`
		} `json:"platform"`
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.Platform.Gateways) != 2 || st.Platform.Gateways[1].URL != "https://10.0.0.2:8471" {
		t.Fatalf("status platform: %s", b)
	}
}
