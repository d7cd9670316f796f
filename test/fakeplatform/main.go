// Command fakeplatform runs the fake e-Health Card open platform (and Su
// Kang Code endpoint) on a loopback address for the demo, benchmarks and
// manual integration work:
//
//	go run ./test/fakeplatform -addr 127.0.0.1:8480 [-cards FILE] [-token-ttl 2h]
//
// Faults: -faults JSON at start, or POST /_fake/faults {"status":502,"count":3}
// at any time (see platform.Faults; DELETE /_fake/faults clears them);
// counters: GET /_fake/stats (calls, results, reports, verifications, and
// usage: visits counted per qrCodeText or ID number, with usageTotals by
// kind: verify_dynamic, report_static, report_dynamic, report_id); a fresh
// dynamic code: POST /_fake/dynamic {"card":0}. A requestId is answered
// once: any reuse gets 10054.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"scanagent/test/fakeplatform/platform"
)

func main() {
	d := platform.Defaults()
	addr := flag.String("addr", "127.0.0.1:8480", "listen address (loopback)")
	appID := flag.String("app-id", d.AppID, "appId accepted by getAppToken")
	secret := flag.String("app-secret", d.AppSecret, "appSecret every signature is checked with")
	hospital := flag.String("hospital-id", d.HospitalID, "hospitalId accepted")
	tokenTTL := flag.Duration("token-ttl", d.TokenTTL, "appToken lifetime")
	dynTTL := flag.Duration("dynamic-ttl", d.DynamicTTL, "lifetime of minted dynamic codes")
	cardsFile := flag.String("cards", "", "JSON array of cards (built-in set when empty)")
	latency := flag.Duration("latency", 0, "latency injected into every answer")
	faults := flag.String("faults", "", `faults to inject from the start, as the JSON of POST /_fake/faults, e.g. '{"status":502,"count":3}', '{"resultCode":10034,"apis":["reportHISData"]}', '{"html":true}', '{"reset":true,"until":"2026-11-23T10:05:00Z"}'`)
	readyFile := flag.String("ready-file", "", "write the listen address here once serving")
	strict := flag.Bool("strict", false, "also enforce the guide's conditional fields and code tables (department for 挂号 scenes, §3.3 codes)")
	flag.Parse()

	cfg := platform.Config{AppID: *appID, AppSecret: *secret, HospitalID: *hospital, TokenTTL: *tokenTTL, DynamicTTL: *dynTTL, Strict: *strict}
	if *cardsFile != "" {
		b, err := os.ReadFile(*cardsFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(b, &cfg.Cards); err != nil {
			log.Fatalf("%s: %v", *cardsFile, err)
		}
	}
	s := platform.New(cfg)
	if *faults != "" {
		var f platform.Faults
		if err := json.Unmarshal([]byte(*faults), &f); err != nil {
			log.Fatalf("-faults: %v", err)
		}
		if *latency > 0 {
			f.Latency = platform.Duration(*latency)
		}
		s.SetFaults(f)
	} else if *latency > 0 {
		s.SetFaults(platform.Faults{Latency: platform.Duration(*latency)})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *readyFile != "" {
		if err := os.WriteFile(*readyFile, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "fakeplatform: serving on http://%s (appId %s, hospitalId %s)\n", ln.Addr(), cfg.AppID, cfg.HospitalID)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
