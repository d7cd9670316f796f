package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/queue"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
	"scanagent/test/fakeplatform/platform"
)

// BenchmarkDrain measures the outbox drain rate through the real platform
// client to the fake platform on loopback (target ≥ 2000 reports/s), with
// the shipped outbox options.
func BenchmarkDrain(b *testing.B) {
	fake := platform.New(platform.Config{})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	d := platform.Defaults()
	ehc := verify.NewEHC(verify.EHCOptions{AppID: d.AppID, AppSecret: d.AppSecret, HospitalID: d.HospitalID,
		BaseURL: srv.URL + strings.TrimSuffix(platform.APIPrefix, "/"), TokenURL: srv.URL + platform.TokenPath,
		HTTP: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, BreakerFailures: 5, BreakerCooldown: time.Second})
	cfg := config.Default() // the shipped outbox: concurrency, batch window, encryption with a generated key
	cfg.Queue.Path = filepath.Join(b.TempDir(), "q.db")
	o, err := queueOptions(cfg, true, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	q, err := queue.Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		d := card.ReportDefaults{Scene: "010101", Channel: "0100"}
		if err := visit.EnqueueReport(ctx, q, visit.ReportKey(strconv.Itoa(i)), d.StaticReport(platform.BuiltinCards()[i%3].QRCodeText, time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { q.Run(runCtx, platformSender{p: ehc, pause: time.Hour, now: time.Now}); close(done) }()
	for q.Stats().Depth() > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
	if got := len(fake.Stats().Reports); got != b.N {
		b.Fatalf("platform got %d of %d", got, b.N)
	}
}
