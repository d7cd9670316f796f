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

// chromiumArgs are the flags of every headless run, each with its own
// profile directory.
func chromiumArgs(t *testing.T) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + chromiumProfile(t)}
}

// chromiumProfile returns a fresh profile directory, removed when the test
// ends. Not t.TempDir: Chromium's helper processes outlive the browser
// process by a moment and still write there, so t.TempDir's single
// RemoveAll failed now and then ("directory not empty"); this one tries
// again for a few seconds. Registered before the command that uses it, its
// cleanup runs after that command's.
func chromiumProfile(t *testing.T) string {
	dir, err := os.MkdirTemp("", "scanagent-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Logf("chromium profile %s left behind: %v", dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// dumpDOM renders url in Chromium, lets its scripts run 5 s of virtual
// time, and returns the DOM. lang, when set, is the browser's language
// (what it sends as Accept-Language and shows as navigator.languages;
// headless Chromium ignores --lang and says en-US without it).
func dumpDOM(t *testing.T, bin, url, lang string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(chromiumArgs(t), "--virtual-time-budget=5000", "--dump-dom")
	if lang != "" {
		args = append(args, "--accept-lang="+lang)
	}
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

// screenshot saves url rendered at 1280×900 as name under t.TempDir(),
// and copies it to $SCANAGENT_SCREENSHOTS when that is set; it returns
// the saved path.
func screenshot(t *testing.T, bin, url, name, lang string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), name)
	args := append(chromiumArgs(t), "--virtual-time-budget=5000", "--hide-scrollbars", "--window-size=1280,900", "--screenshot="+path)
	if lang != "" {
		args = append(args, "--accept-lang="+lang)
	}
	if out, err := exec.CommandContext(ctx, bin, append(args, url)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot %s: %v\n%s", url, err, out)
	}
	png, err := os.ReadFile(path)
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, %v", path, len(png), err)
	}
	if dir := screenshotDir(); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", filepath.Join(dir, name))
	}
	return path
}

// screenshotDir is where screenshots are kept beyond the test
// (SCANAGENT_SCREENSHOTS; SCANAGENT_SCREENSHOT_DIR, its old name, too).
func screenshotDir() string {
	if d := os.Getenv("SCANAGENT_SCREENSHOTS"); d != "" {
		return d
	}
	return os.Getenv("SCANAGENT_SCREENSHOT_DIR")
}

// headless starts Chromium on url; it runs until the test ends.
func headless(t *testing.T, bin, url string, extra ...string) {
	args := append(chromiumArgs(t), extra...)
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
	dom := dumpDOM(t, bin, api+"/", "zh-CN")
	if !strings.Contains(dom, "龙*英") || strings.Contains(dom, "龙小英") || !strings.Contains(dom, "已连接") {
		t.Fatalf("status page DOM lacks the masked scan or shows it unmasked:\n%s", dom)
	}
	if screenshotDir() != "" {
		screenshot(t, bin, api+"/", "status.png", "zh-CN")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		exec.CommandContext(ctx, bin, append(chromiumArgs(t), "--timeout=3000", "--window-size=900,400",
			"--screenshot="+filepath.Join(screenshotDir(), "fakehis.png"), allowed.URL+"/?agent="+api)...).Run()
	}
}
