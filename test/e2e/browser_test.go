//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"scanagent/test/fakehis/server"
	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (scripts/ci-deps.sh installs it)")
	}
	t.Skip("chromium not installed")
	return ""
}

// headless starts Chromium on url; it runs until the test ends.
func headless(t *testing.T, bin, url string, extra ...string) {
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
}

// TestBrowserHIS drives the local API from real browsers: the fake HIS page
// on an allowed origin receives the scan over the WebSocket and posts the
// usage report back (which reaches the platform), the same page on another
// origin is refused, the status page shows the scan masked, and the push
// and HL7 sinks deliver to the fake HIS.
func TestBrowserHIS(t *testing.T) {
	bin := chromium(t)
	fakeHIS := server.New(server.Options{Secret: "push-secret-0123456789"})
	allowed := httptest.NewServer(fakeHIS.Handler())
	defer allowed.Close()
	foreign := httptest.NewServer(fakeHIS.Handler()) // same page, another origin
	defer foreign.Close()
	mllp, _ := net.Listen("tcp", "127.0.0.1:0")
	defer mllp.Close()
	go fakeHIS.ServeMLLP(mllp)

	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	s.report = "" // the page reports the visit, not the agent
	s.his = fmt.Sprintf(`[his.api]
listen = "127.0.0.1:0"
allowed_origins = [%q]
[his.push]
enabled = true
url = "%s/push"
secret = "push-secret-0123456789"
[his.hl7]
enabled = true
addr = %q
sending_facility = "E2E"`, allowed.URL, allowed.URL, mllp.Addr().String())
	a := s.start(s.config("baud = 115200", ""))
	api := "http://" + a.apiAddr()

	headless(t, bin, allowed.URL+"/?agent="+api)
	headless(t, bin, foreign.URL+"/?agent="+api)
	waitUntil(t, "both pages tried the WebSocket", func() bool {
		b := strings.Join(fakeHIS.Stats().Browser, "\n")
		return strings.Contains(b, "ws-open") && strings.Contains(b, "ws-refused")
	})
	if n := strings.Count(strings.Join(fakeHIS.Stats().Browser, "\n"), "ws-open"); n != 1 {
		t.Fatalf("%d pages connected; only the allowed origin may", n)
	}

	card := platform.BuiltinCards()[1]
	s.dev.Type([]byte(card.QRCodeText))
	e := a.waitFor("scan", 5*time.Second)
	id := e.str("scan")
	waitUntil(t, "the page received the scan and posted the usage report", func() bool {
		b := strings.Join(fakeHIS.Stats().Browser, "\n")
		return strings.Contains(b, "scan "+id+" ehc_static") && strings.Contains(b, "usage 202 "+id)
	})
	waitUntil(t, "the page's usage report reached the platform", func() bool {
		for _, r := range s.platform.Stats().Reports {
			if r.Req["scene"] == "0101051" && r.Req["department"] == "门诊收费" && r.Req["qrCodeText"] == card.QRCodeText {
				return true
			}
		}
		return false
	})
	waitUntil(t, "push and HL7 delivered", func() bool {
		st := fakeHIS.Stats()
		return len(st.Pushes) == 1 && len(st.HL7) == 1
	})
	if st := fakeHIS.Stats(); st.Pushes[0].Identity["name"] != "龙小英" || !strings.Contains(st.HL7[0], "|龙小英|") || st.BadPushes != 0 {
		t.Fatalf("fake HIS got %+v", st)
	}

	// The status page, rendered by Chromium, shows the scan masked.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dom, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", api+"/").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dom), "龙*英") || strings.Contains(string(dom), "龙小英") || !strings.Contains(string(dom), "connected") {
		t.Fatalf("status page DOM lacks the masked scan or shows it unmasked:\n%s", dom)
	}
	if shot := os.Getenv("SCANAGENT_SCREENSHOT_DIR"); shot != "" {
		exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--window-size=1100,800",
			"--screenshot="+filepath.Join(shot, "status.png"), api+"/").Run()
		exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--user-data-dir="+t.TempDir(), "--timeout=3000", "--window-size=900,400",
			"--screenshot="+filepath.Join(shot, "fakehis.png"), allowed.URL+"/?agent="+api).Run()
	}
}
