//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/internal/ha/etcdtest"
	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// haGateway is one gateway of TestHAGateways: its process, address and
// configuration file.
type haGateway struct {
	name, addr, cfg string
	a               *agent
}

const haTerminalToken = "counter-09-token-0123456789"

// newHAGateway writes a gateway's configuration: [gateway.ha] on etcd,
// a 3 s lease, one terminal.
func newHAGateway(t *testing.T, s *setup, name, etcd string) *haGateway {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	g := &haGateway{name: name, addr: ln.Addr().String()}
	ln.Close()
	dir := t.TempDir()
	g.cfg = filepath.Join(dir, name+".toml")
	cfg := fmt.Sprintf(`
[agent]
terminal_id = %q
data_dir = %q
[log]
level = "debug"
format = "json"
[platform]
%srequest_timeout = "1s"
connect_timeout = "500ms"
[gateway]
enabled = true
listen = %q
[[gateway.terminal]]
id = "counter-09"
token = %q
[gateway.ha]
enabled = true
endpoints = [%q]
lease_ttl = "3s"
token_key = "%s"
[his.api]
enabled = false
`, name, dir, platformTOML(s.pURL), g.addr, haTerminalToken, etcd, strings.Repeat("ab", 32))
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *haGateway) start(t *testing.T) {
	g.a = &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, g.a, g.cfg)
	g.a.waitFor("agent ready", 10*time.Second)
}

// call posts body to the gateway's path with the terminal's token and
// returns the decoded answer.
func (g *haGateway) call(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+g.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+haTerminalToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", g.name, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: HTTP %d, %v", g.name, path, resp.StatusCode, err)
	}
	return out
}

// leading reads the gateway's HA status.
func (g *haGateway) leading(t *testing.T) bool {
	st, _ := g.call(t, http.MethodGet, "/v1/status", nil)["result"].(map[string]any)
	h, _ := st["ha"].(map[string]any)
	return h["leading"] == true
}

// served counts the verifications this gateway served the terminal.
func (g *haGateway) served() int { return strings.Count(g.a.log(), `"message":"gateway verified"`) }

// TestHAGateways runs two gateways in [gateway.ha] on a real etcd, one fake
// platform and a terminal with both gateways in platform.gateway_urls:
// (a) both gateways serve verifications with one getAppToken between them;
// (b) the leader is killed: the other leads with the stored token, and no
// second getAppToken happens; (d) the terminal keeps verifying while its
// first gateway is down and returns to it when it is back. Every report
// of the terminal reaches the platform exactly once.
func TestHAGateways(t *testing.T) {
	etcd := etcdtest.Start(t)
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	cards := platform.BuiltinCards()
	gw1, gw2 := newHAGateway(t, s, "gw1", etcd.Endpoint), newHAGateway(t, s, "gw2", etcd.Endpoint)
	gw1.start(t)
	gw1.a.waitFor("shared appToken updated", 10*time.Second)
	gw2.start(t)

	// (a) both serve with the one token.
	for _, g := range []*haGateway{gw1, gw2} {
		ans := g.call(t, http.MethodPost, "/v1/verify", map[string]any{"kind": "ehc_static", "qrCodeText": cards[2].QRCodeText})
		if id, _ := ans["result"].(map[string]any); id["name"] != "欧阳娜娜" {
			t.Fatalf("%s verify: %v", g.name, ans)
		}
	}
	if !gw1.leading(t) || gw2.leading(t) {
		t.Fatal("gw1 should lead, gw2 follow")
	}
	if n := s.platform.Stats().Tokens; n != 1 {
		t.Fatalf("%d getAppToken calls for two gateways; want 1", n)
	}

	termCfg := filepath.Join(s.dir, "terminal.toml")
	os.WriteFile(termCfg, []byte(fmt.Sprintf(`
[agent]
terminal_id = "counter-09"
data_dir = %q
[log]
format = "json"
[platform]
mode = "gateway"
gateway_urls = ["http://%s", "http://%s"]
gateway_token = %q
retries = 0
breaker_failures = 1
breaker_cooldown = "2s"
connect_timeout = "500ms"
request_timeout = "3s"
[code]
debounce = "0s"
[[source]]
name = "counter"
port = %q
baud = 115200
scene = "010101"
department = "内科"
card_channel = "0100"
[his.api]
enabled = false
`, s.dir, gw1.addr, gw2.addr, haTerminalToken, s.link)), 0o600)
	term := s.start(termCfg)
	scans := 0
	scan := func(c platform.Card) {
		t.Helper()
		s.dev.Type([]byte(c.QRCodeText))
		e := term.waitFor("scan", 10*time.Second)
		if e["verified"] != true || e.str("kind") != "ehc_static" {
			t.Fatalf("scan %d: %v", scans, e)
		}
		scans++
	}
	scan(cards[0])
	if gw1.served() != 2 || gw2.served() != 1 { // one each: the direct calls above
		t.Fatalf("served %d/%d: the terminal should prefer gw1", gw1.served(), gw2.served())
	}

	// (b), (d): the leader dies. The terminal moves to gw2 at once; gw2
	// leads after the lease's TTL, with the stored token.
	killed := time.Now()
	gw1.a.stop(syscall.SIGKILL, 5*time.Second)
	scan(cards[1])
	scan(cards[0])
	waitUntilWithin(t, "gw2 to lead", 3*time.Second+10*time.Second, func() bool { return gw2.leading(t) })
	t.Logf("gw2 leads %v after gw1 was killed (lease_ttl 3s)", time.Since(killed).Round(10*time.Millisecond))
	scan(cards[1])
	if n := gw2.served(); n != 4 {
		t.Fatalf("gw2 served %d verifications, want 4", n)
	}

	// gw1 comes back as a follower with the stored token; the terminal
	// returns to it after its breaker's cooldown.
	gw1.start(t)
	gw1.a.waitFor("shared appToken updated", 10*time.Second)
	if gw1.leading(t) {
		t.Fatal("the restarted gw1 leads; gw2 should keep the leadership")
	}
	time.Sleep(2500 * time.Millisecond)
	scan(cards[0])
	scan(cards[1])
	if n := gw1.served(); n != 2 {
		t.Fatalf("the restarted gw1 served %d verifications, want the terminal back on it (2)", n)
	}
	waitUntilWithin(t, "every report delivered", 20*time.Second, func() bool { return len(s.platform.Stats().Reports) >= scans })
	time.Sleep(500 * time.Millisecond)
	st := s.platform.Stats()
	if len(st.Reports) != scans || st.Duplicates != 0 && len(st.Reports) != scans {
		t.Fatalf("%d reports for %d scans (duplicates answered: %d)", len(st.Reports), scans, st.Duplicates)
	}
	if st.Tokens != 1 {
		t.Fatalf("%d getAppToken calls through a failover and a restart; want 1", st.Tokens)
	}
	if n := st.Results["getHealthCardByQRCode:21004"] + st.Results["reportHISData:21004"]; n != 0 {
		t.Fatalf("%d calls with a dead token", n)
	}
	term.stop(syscall.SIGTERM, 6*time.Second)
	gw2.a.stop(syscall.SIGTERM, 6*time.Second)
	gw1.a.stop(syscall.SIGTERM, 6*time.Second)
}

func waitUntilWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
