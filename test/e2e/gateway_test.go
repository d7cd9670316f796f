//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// TestGatewayDeployment runs two real agents: a gateway that holds the
// appSecret and the only token, and a terminal in platform.mode = "gateway"
// with a scanner and no secret. Static and dynamic codes come back verified
// through the gateway, the terminal's usage reports reach the platform
// through it, and only the gateway ever fetched a token.
func TestGatewayDeployment(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	d := platform.Defaults()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gwAddr := ln.Addr().String()
	ln.Close()
	const token = "counter-07-token-0123456789"

	gwDir := t.TempDir()
	gwCfg := filepath.Join(gwDir, "gateway.toml")
	os.WriteFile(gwCfg, []byte(fmt.Sprintf(`
[agent]
data_dir = %q
[log]
format = "json"
[platform]
%s[gateway]
enabled = true
listen = %q
[[gateway.terminal]]
id = "counter-07"
token = %q
[his.api]
enabled = false
`, gwDir, platformTOML(s.pURL), gwAddr, token)), 0o600)
	gw := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, gw, gwCfg)
	gw.waitFor("agent ready", 10*time.Second)

	termCfg := filepath.Join(s.dir, "terminal.toml")
	os.WriteFile(termCfg, []byte(fmt.Sprintf(`
[agent]
terminal_id = "spoofed-id"
data_dir = %q
[log]
format = "json"
[platform]
mode = "gateway"
gateway_url = "http://%s"
gateway_token = %q
[[source]]
name = "counter"
port = %q
baud = 115200
scene = "010101"
department = "内科"
card_channel = "0100"
[his.api]
enabled = false
`, s.dir, gwAddr, token, s.link)), 0o600)
	term := s.start(termCfg)

	cards := platform.BuiltinCards()
	for _, c := range []struct{ payload, kind, name string }{
		{cards[0].QRCodeText, "ehc_static", "张*"},
		{cards[1].DynamicQRCodeText, "ehc_dynamic", "龙*英"},
	} {
		s.dev.Type([]byte(c.payload))
		e := term.waitFor("scan", 5*time.Second)
		if e.str("kind") != c.kind || e["verified"] != true || e.identity()["name"] != c.name {
			t.Fatalf("through the gateway: %v", e)
		}
	}
	// One visit each: the static code's report through the gateway, the
	// dynamic code's verifyQRCode with the terminal's scene and channel.
	waitUntil(t, "the terminal's report delivered through the gateway", func() bool { return len(s.platform.Stats().Reports) == 1 })
	st := s.platform.Stats()
	if st.UsageTotals[platform.UsageVerifyDynamic] != 1 || st.UsageTotals[platform.UsageReportDynamic] != 0 || len(st.Verifications) != 1 ||
		st.Verifications[0].Req["useChannel"] != "0100" || st.Verifications[0].Req["medicalStep"] != "010101" {
		t.Fatalf("usage through the gateway: %v, verifications %v", st.UsageTotals, st.Verifications)
	}
	if n := s.platform.Stats().Tokens; n != 1 {
		t.Fatalf("%d getAppToken calls; only the gateway may fetch, once", n)
	}
	if strings.Contains(term.log(), d.AppSecret) {
		t.Fatal("the terminal saw the appSecret")
	}
	term.stop(syscall.SIGTERM, 6*time.Second)
	gw.stop(syscall.SIGTERM, 6*time.Second)
}
