//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakescanner/device"
)

const fleetPageToken = "fleet-viewer-token-0123456789"

// startFleetGateway starts a single gateway (no [gateway.ha]: the fleet in
// memory) for counter-07 and counter-08 with the fleet view, terminals
// offline after 2 s and silent after 3 s; it returns its address.
func startFleetGateway(t *testing.T, s *setup) string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[agent]
terminal_id = "gw-east"
data_dir = %q
[log]
format = "json"
[platform]
%sheartbeat_interval = "1s"
[gateway]
enabled = true
listen = %q
fleet_token = %q
offline_after = "2s"
silent_after = "3s"
[[gateway.terminal]]
id = "counter-07"
token = "counter-07-token-0123456789"
[[gateway.terminal]]
id = "kiosk-08"
token = "kiosk-08-token-0123456789"
[his.api]
enabled = false
`, dir, platformTOML(s.pURL), addr, fleetPageToken)), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, gw, cfg)
	gw.waitFor("agent ready", 10*time.Second)
	return addr
}

// startFleetTerminal starts a terminal of the gateway at gw: with the
// setup's scanner when source, else none.
func startFleetTerminal(t *testing.T, s *setup, gw, id, campus string, source bool) *agent {
	dir := t.TempDir()
	src := ""
	if source {
		src = fmt.Sprintf("[[source]]\nname = \"counter\"\nport = %q\nbaud = 115200\n", s.link)
	}
	cfg := filepath.Join(dir, id+".toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[agent]
terminal_id = %q
data_dir = %q
[log]
format = "json"
[platform]
mode = "gateway"
gateway_url = "http://%s"
gateway_token = "%s-token-0123456789"
heartbeat_interval = "1s"
campus = %q
[his.api]
enabled = false
%s`, id, dir, gw, id, campus, src)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, a, cfg)
	a.waitFor("agent ready", 10*time.Second)
	return a
}

// TestFleetPageBrowser looks at a gateway's fleet page in headless
// Chromium, logged in with the fleet token as Basic password: a terminal
// online and healthy, another silent (stopped) on top, in Chinese and in
// English, with a screenshot of each; without the token the page is
// refused.
func TestFleetPageBrowser(t *testing.T) {
	bin := chromium(t)
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	gw := startFleetGateway(t, s)
	startFleetTerminal(t, s, gw, "counter-07", "东院", true)
	kiosk := startFleetTerminal(t, s, gw, "kiosk-08", "西院", false)
	waitFleetOnline(t, gw, fleetPageToken, "counter-07", "kiosk-08")
	kiosk.stop(syscall.SIGTERM, 6*time.Second)
	waitUntilWithin(t, "kiosk-08 to be silent", 10*time.Second, func() bool {
		f, err := readFleet(gw, fleetPageToken)
		return err == nil && f["kiosk-08"].State == "silent" && f["counter-07"].Online
	})

	resp, err := http.Get("http://" + gw + "/fleet")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("the page without the token: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	url := "http://it:" + fleetPageToken + "@" + gw + "/fleet"
	for _, c := range []struct {
		lang, name string
		texts      []string
	}{
		{"zh-CN,zh,en", "zh", []string{"终端总览", "故障：需要处理", "失联", "在线", "东院", "西院", "1/1 已连接", "最近心跳"}},
		{"en-US,en,zh-CN", "en", []string{"Terminal fleet", "Not working: action needed", "silent", "online", "1/1 connected", "Last heartbeat"}},
	} {
		dom := pageText(dumpDOM(t, bin, url, c.lang))
		if !strings.Contains(dom, `data-level="critical"`) {
			t.Errorf("%s page: banner is not red with a silent terminal:\n%s", c.name, dom)
		}
		for _, text := range c.texts {
			if !strings.Contains(dom, text) {
				t.Errorf("%s page lacks %q:\n%s", c.name, text, dom)
			}
		}
		if i, j := strings.Index(dom, `data-terminal="kiosk-08"`), strings.Index(dom, `data-terminal="counter-07"`); i < 0 || j < 0 || i > j {
			t.Errorf("%s page: the silent kiosk-08 is not listed first:\n%s", c.name, dom)
		}
		if strings.Contains(dom, fleetPageToken) || strings.Contains(dom, "-token-") {
			t.Errorf("%s page shows a token", c.name)
		}
		screenshot(t, bin, url, "fleet-"+c.name+".png", c.lang)
	}
	// Sorting is a link: no script on the page, nothing loaded from elsewhere.
	if dom := dumpDOM(t, bin, url+"?sort=terminal", "en"); !strings.Contains(dom, "Terminal ▼") || strings.Contains(dom, "<script") {
		t.Errorf("sorted page:\n%s", dom)
	}
	if m := regexp.MustCompile(`(?i)\ssrc\s*=|@import|url\(|https?://`).FindString(pageText(dumpDOM(t, bin, url, "en"))); m != "" {
		t.Errorf("the fleet page refers to %q: it must load nothing from elsewhere", m)
	}
}
