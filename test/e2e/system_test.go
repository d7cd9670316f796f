//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakehis/server"
	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// TestFullSystem: fake platform + fake HIS + fake scanner + the agent as a
// real process. 1,000 mixed codes are typed; the platform is down for the
// middle fifth (static codes are then handed over unverified, dynamic ones
// refused); the agent is restarted two thirds in. Every identity must reach
// the fake HIS, every usage report the fake platform exactly once, and
// `scanagent status`, /v1/status, the status page and the fakes must agree.
func TestFullSystem(t *testing.T) {
	n := envInt("SCANAGENT_SYSTEM_N", 1000)
	if testing.Short() {
		n = 200
	}
	fakeHIS := server.New(server.Options{Secret: "push-secret-0123456789"})
	hisSrv := httptest.NewServer(fakeHIS.Handler())
	defer hisSrv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	apiAddr := ln.Addr().String()
	ln.Close()

	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	s.debounce, s.logLevel, s.breakerCooldown = "0s", "info", "1s"
	s.his = fmt.Sprintf("[his.api]\nlisten = %q\n[his.push]\nenabled = true\nurl = \"%s/push\"\nsecret = \"push-secret-0123456789\"", apiAddr, hisSrv.URL)
	cfgPath := s.config("baud = 115200", `offline = "unverified"`)
	a := s.start(cfgPath)

	cards := platform.BuiltinCards()
	type expect struct {
		kind      string
		handed    bool // an identity reaches the HIS
		ehcReport bool // a usage report is queued
	}
	var want []expect
	outageFrom, outageTo, restartAt := n*2/5, n*3/5, n*2/3
	handed, reports := 0, 0
	for i := 0; i < n; i++ {
		if i == outageFrom {
			s.platform.SetFaults(platform.Faults{Reset: true})
		}
		if i == outageTo {
			s.platform.SetFaults(platform.Faults{})
			time.Sleep(1200 * time.Millisecond) // past breaker_cooldown: the next call is the half-open trial
		}
		if i == restartAt {
			a.stop(syscall.SIGTERM, 10*time.Second)
			if a.err != nil {
				t.Fatalf("stop: %v", a.err)
			}
			a = s.start(cfgPath)
		}
		outage := i >= outageFrom && i < outageTo
		var payload string
		var e expect
		switch i % 5 {
		case 0, 1:
			payload, e = cards[i%3].QRCodeText, expect{"ehc_static", true, true} // offline: handed over unverified, still reported
		case 2:
			payload, e = cards[i%2].DynamicQRCodeText, expect{"ehc_dynamic", !outage, false} // counted by verifyQRCode, never reported
		case 3:
			payload, e = "432901198810228888", expect{"id_card", true, false}
		case 4:
			payload, e = fmt.Sprintf("HC%010d", i), expect{"custom", true, false}
		}
		if err := s.dev.Type([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		ev := a.waitFor("scan", 10*time.Second)
		if ev.str("kind") != e.kind || (ev.identity() != nil) != e.handed {
			t.Fatalf("code %d (%s, outage %v): outcome %v", i, e.kind, outage, ev)
		}
		want = append(want, e)
		if e.handed {
			handed++
		}
		if e.ehcReport {
			reports++
		}
	}
	// Every outcome reached the HIS push too, in order (refused scans are
	// pushed as well): the kind and whether an identity came with it.
	waitUntil(t, "all outcomes pushed", func() bool { return len(fakeHIS.Stats().Pushes) == n })
	got := 0
	for i, p := range fakeHIS.Stats().Pushes {
		if p.Kind != want[i].kind || (p.Identity != nil) != want[i].handed {
			t.Fatalf("push %d: kind %q identity %v, want %+v", i, p.Kind, p.Identity != nil, want[i])
		}
		if p.Identity != nil {
			got++
		}
	}
	if got != handed {
		t.Fatalf("HIS got %d identities, want %d", got, handed)
	}
	// Every report reached the platform exactly once (a second send with a
	// new requestId would be recorded as a second report).
	deadline := time.Now().Add(60 * time.Second)
	for len(s.platform.Stats().Reports) < reports && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // would a duplicate still arrive?
	st := s.platform.Stats()
	if len(st.Reports) != reports {
		t.Fatalf("platform has %d reports, want exactly %d", len(st.Reports), reports)
	}
	if st.UsageTotals[platform.UsageReportDynamic] != 0 {
		t.Fatalf("%d dynamic codes were also reported: verifyQRCode already counted them", st.UsageTotals[platform.UsageReportDynamic])
	}
	seen := map[string]bool{}
	for _, r := range st.Reports {
		if seen[r.RequestID] {
			t.Fatalf("requestId %s accepted twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}

	// The agent's own accounts agree with the fakes, once its last
	// settles are in (a report whose answer came late is replayed after
	// its backoff, and a replay's 10054 then settles it).
	var status struct {
		Queue struct {
			Depth     int   `json:"depth"`
			Delivered int64 `json:"delivered"`
			Dead      int   `json:"dead"`
		} `json:"queue"`
		Scans struct {
			Total int64 `json:"total"`
		} `json:"scans"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + apiAddr + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&status)
		resp.Body.Close()
		if status.Queue.Depth == 0 && status.Queue.Dead == 0 && status.Queue.Delivered == int64(reports) && status.Scans.Total == int64(n-restartAt) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v1/status %+v; want delivered %d (across the restart), scans %d (since it)", status, reports, n-restartAt)
		}
	}
	out, err := exec.Command(binary, "status", "--json", "-c", cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("scanagent status: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`"delivered":`+strconv.Itoa(reports)+`\b`).Match(out) || !strings.Contains(string(out), `"depth":0`) {
		t.Fatalf("scanagent status disagrees:\n%s", out)
	}
	if bin, err := exec.LookPath("chromium"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		dom, _ := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--accept-lang=en-US", "--dump-dom", "http://"+apiAddr+"/").Output()
		if !regexp.MustCompile(`<th>Delivered</th><td>` + strconv.Itoa(reports) + `</td>`).Match(dom) {
			t.Fatalf("status page does not show %d delivered:\n%s", reports, dom)
		}
	}
	t.Logf("codes=%d handed=%d reports=%d duplicates-recognised=%d", n, handed, reports, st.Duplicates)
}
