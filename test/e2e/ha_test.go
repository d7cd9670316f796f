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

const (
	haTerminalToken  = "counter-09-token-0123456789"
	haTerminal2Token = "counter-10-token-0123456789"
	haFleetToken     = "fleet-viewer-token-0123456789"
)

// newHAGateway writes a gateway's configuration: [gateway.ha] on etcd,
// a 3 s lease, two terminals, the fleet view (terminals heartbeat every
// second, offline after 10 s).
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
heartbeat_interval = "1s"
[gateway]
enabled = true
listen = %q
fleet_token = %q
offline_after = "10s"
silent_after = "30s"
[[gateway.terminal]]
id = "counter-09"
token = %q
[[gateway.terminal]]
id = "counter-10"
token = %q
[gateway.ha]
enabled = true
endpoints = [%q]
lease_ttl = "3s"
token_key = "%s"
[his.api]
enabled = false
`, name, dir, platformTOML(s.pURL), g.addr, haFleetToken, haTerminalToken, haTerminal2Token, etcd, strings.Repeat("ab", 32))
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

// fetches is the gateway's getAppToken calls since it started (its HA status).
func (g *haGateway) fetches(t *testing.T) int {
	st, _ := g.call(t, http.MethodGet, "/v1/status", nil)["result"].(map[string]any)
	h, _ := st["ha"].(map[string]any)
	n, _ := h["fetches"].(float64)
	return int(n)
}

// served counts the verifications this gateway served the terminal.
func (g *haGateway) served() int { return strings.Count(g.a.log(), `"message":"gateway verified"`) }

// servedBy returns g.served() once it reached want (its log lines are read
// asynchronously: the terminal may report a scan before the harness has
// read the gateway's line about it), or after 3 s.
func (g *haGateway) servedBy(want int) int {
	for deadline := time.Now().Add(3 * time.Second); g.served() < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return g.served()
}

// TestHAGateways runs three gateways in [gateway.ha] on a real etcd, one
// fake platform and two terminals with every gateway in
// platform.gateway_urls (counter-09 scans and prefers gw1; counter-10 only
// heartbeats and prefers gw2, then gw3): (a) all gateways serve
// verifications with one getAppToken between them; (b) the leader is
// killed while the terminal scans continuously: every scan verifies (none
// waits more than lease_ttl + 2 s), gw2 leads with the stored token, and
// no second getAppToken happens;
// (d) the terminal returns to gw1 when it is back; (c) the new leader, gw2,
// is stopped (SIGSTOP) beyond its lease while the terminal scans
// continuously: every scan verifies, gw3, next in line, leads, still
// without a getAppToken, and gw2, continued, follows and never fetched.
// Every report of the terminal reaches the platform exactly once, no call
// carries a dead token, and throughout, the fleet view of a running
// gateway lists both terminals online.
func TestHAGateways(t *testing.T) {
	etcd := etcdtest.Start(t)
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	cards := platform.BuiltinCards()
	gw1, gw2, gw3 := newHAGateway(t, s, "gw1", etcd.Endpoint), newHAGateway(t, s, "gw2", etcd.Endpoint), newHAGateway(t, s, "gw3", etcd.Endpoint)
	gw1.start(t)
	gw1.a.waitFor("shared appToken updated", 10*time.Second)
	gw2.start(t)
	gw3.start(t) // campaigns after gw2: next in line after it

	// (a) all three serve with the one token.
	for _, g := range []*haGateway{gw1, gw2, gw3} {
		ans := g.call(t, http.MethodPost, "/v1/verify", map[string]any{"kind": "ehc_static", "qrCodeText": cards[2].QRCodeText})
		if id, _ := ans["result"].(map[string]any); id["name"] != "欧阳娜娜" {
			t.Fatalf("%s verify: %v", g.name, ans)
		}
	}
	if !gw1.leading(t) || gw2.leading(t) || gw3.leading(t) {
		t.Fatal("gw1 should lead, gw2 and gw3 follow")
	}
	if n := s.platform.Stats().Tokens; n != 1 {
		t.Fatalf("%d getAppToken calls for three gateways; want 1", n)
	}

	termCfg := filepath.Join(s.dir, "terminal.toml")
	source := fmt.Sprintf(`
[code]
debounce = "0s"
[[source]]
name = "counter"
port = %q
baud = 115200
scene = "010101"
department = "内科"
card_channel = "0100"
`, s.link)
	if err := os.WriteFile(termCfg, []byte(haTerminalTOML("counter-09", s.dir, haTerminalToken, "east", source, gw1.addr, gw2.addr, gw3.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	term := s.start(termCfg)
	term2 := startHATerminal2(t, gw2.addr, gw3.addr, gw1.addr)
	terminals := []string{"counter-09", "counter-10"}
	for _, g := range []*haGateway{gw1, gw2, gw3} {
		f := waitFleetOnline(t, g.addr, haFleetToken, terminals...)
		if f["counter-09"].Via != "gw1" || f["counter-10"].Via != "gw2" || f["counter-09"].Campus != "east" {
			t.Fatalf("%s's fleet view: %+v; each terminal should heartbeat its preferred gateway", g.name, f)
		}
	}
	fleet := watchFleet(gw1.addr, haFleetToken, terminals...)
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
	if gw1.servedBy(2) != 2 || gw2.served() != 1 || gw3.served() != 1 { // one each: the direct calls above
		t.Fatalf("served %d/%d/%d: the terminal should prefer gw1", gw1.served(), gw2.served(), gw3.served())
	}

	// (b), (d): the leader dies. The terminal moves to gw2 at once; gw2
	// leads after the lease's TTL, with the stored token.
	fleet.use(t, gw2.addr)
	stopScanning := scanning(s, term, cards)
	time.Sleep(time.Second) // a few scans through gw1 first
	killed := time.Now()
	gw1.a.stop(syscall.SIGKILL, 5*time.Second)
	waitUntilWithin(t, "gw2 to lead", 3*time.Second+10*time.Second, func() bool { return gw2.leading(t) })
	t.Logf("gw2 leads %v after gw1 was killed (lease_ttl 3s)", time.Since(killed).Round(10*time.Millisecond))
	n, failed, longest := stopScanning()
	if len(failed) > 0 {
		t.Fatalf("scanning continuously through the kill -9: %d of %d scans not verified:\n%s", len(failed), n, strings.Join(failed, "\n"))
	}
	if longest > 3*time.Second+2*time.Second {
		t.Fatalf("a scan waited %v for its outcome through the kill -9; want at most lease_ttl + 2 s", longest)
	}
	t.Logf("scanning continuously through the kill -9 of the leader: %d scans, all verified, the longest in %v", n, longest.Round(time.Millisecond))
	scans += n
	before := gw2.served()
	scan(cards[1])
	scan(cards[0])
	scan(cards[1])
	if n := gw2.servedBy(before + 3); n < before+3 {
		t.Fatalf("gw2 served %d verifications, want at least %d: the terminal's scans after the kill", n, before+3)
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
	if n := gw1.servedBy(2); n != 2 {
		t.Fatalf("the restarted gw1 served %d verifications, want the terminal back on it (2)", n)
	}
	stopScanning = scanning(s, term, cards)
	haStopLeader(t, gw3, gw2, fleet, func() {})
	n, failed, longest = stopScanning()
	if len(failed) > 0 {
		t.Fatalf("scanning continuously through the SIGSTOP and SIGCONT: %d of %d scans not verified:\n%s", len(failed), n, strings.Join(failed, "\n"))
	}
	t.Logf("scanning continuously through the SIGSTOP/SIGCONT of the new leader: %d scans, all verified, the longest in %v", n, longest.Round(time.Millisecond))
	scans += n
	if gw1.leading(t) {
		t.Fatal("gw1 leads; gw3 campaigned before its restart and should")
	}
	for _, g := range []*haGateway{gw1, gw2, gw3} {
		if n := g.fetches(t); g != gw1 && n != 0 {
			t.Fatalf("%s called getAppToken %d times; only gw1, the first leader, should have", g.name, n)
		}
	}
	scan(cards[0])
	polls, misses := fleet.finish()
	if len(misses) > 0 || polls < 20 {
		t.Fatalf("fleet view polled %d times; terminals missing or offline in %d polls:\n%s", polls, len(misses), strings.Join(misses, "\n"))
	}
	t.Logf("fleet view polled %d times through a kill -9 and a SIGSTOP/SIGCONT: both terminals online in every poll", polls)
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
	term2.stop(syscall.SIGTERM, 6*time.Second)
	gw3.a.stop(syscall.SIGTERM, 6*time.Second)
	gw2.a.stop(syscall.SIGTERM, 6*time.Second)
	gw1.a.stop(syscall.SIGTERM, 6*time.Second)
}

// scanning types static codes on the terminal's scanner one after
// another, each once the previous one's outcome is logged, until the
// returned stop is called, which returns how many were scanned and the
// outcomes that were not a verified identity, and the longest wait for
// an outcome. It is the only reader of term's events meanwhile.
func scanning(s *setup, term *agent, cards []platform.Card) (stop func() (n int, failed []string, longest time.Duration)) {
	quit, finished := make(chan struct{}), make(chan struct{})
	var n int
	var failed []string
	var longest time.Duration
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			if err := s.dev.Type([]byte(cards[i%2].QRCodeText)); err != nil {
				failed = append(failed, err.Error())
				return
			}
			n++
			typed := time.Now()
			e, ok := term.next("scan", 10*time.Second)
			longest = max(longest, time.Since(typed))
			if !ok {
				failed = append(failed, fmt.Sprintf("scan %d: no outcome within 10 s", i))
				return
			}
			if e["verified"] != true {
				failed = append(failed, fmt.Sprintf("scan %d: %v", i, e))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() (int, []string, time.Duration) {
		close(quit)
		<-finished
		return n, failed, longest
	}
}

// haTerminalTOML is a terminal's configuration: gateway mode on the
// gateways given, in that order, a heartbeat every second, one quick
// failover (no retries, a breaker that opens at once), plus extra tables.
func haTerminalTOML(id, dir, token, campus, extra string, gateways ...string) string {
	urls := make([]string, len(gateways))
	for i, g := range gateways {
		urls[i] = fmt.Sprintf("%q", "http://"+g)
	}
	return fmt.Sprintf(`
[agent]
terminal_id = %q
data_dir = %q
[log]
format = "json"
[platform]
mode = "gateway"
gateway_urls = [%s]
gateway_token = %q
retries = 0
breaker_failures = 1
breaker_cooldown = "2s"
connect_timeout = "500ms"
request_timeout = "3s"
heartbeat_interval = "1s"
campus = %q
[his.api]
enabled = false
%s`, id, dir, strings.Join(urls, ", "), token, campus, extra)
}

// startHATerminal2 starts counter-10: no scanner, gateways in the order
// given, a heartbeat every second.
func startHATerminal2(t *testing.T, gateways ...string) *agent {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "terminal2.toml")
	if err := os.WriteFile(cfg, []byte(haTerminalTOML("counter-10", dir, haTerminal2Token, "west", "", gateways...)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, a, cfg)
	a.waitFor("agent ready", 10*time.Second)
	return a
}

// haStopLeader is (c): the leader (stopped) is frozen with SIGSTOP beyond
// its lease; the other gateway (next) leads with the stored token and
// takes counter-10's heartbeats (which preferred the stopped one); after
// SIGCONT the stopped gateway follows. during runs while it is stopped,
// once next leads. The fleet watch polls next meanwhile.
func haStopLeader(t *testing.T, next, stopped *haGateway, fleet *fleetWatch, during func()) {
	t.Helper()
	fleet.use(t, next.addr)
	at := time.Now()
	if err := stopped.a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitUntilWithin(t, next.name+" to lead", 3*time.Second+10*time.Second, func() bool { return next.leading(t) })
	t.Logf("%s leads %v after %s was stopped (SIGSTOP, lease_ttl 3s)", next.name, time.Since(at).Round(10*time.Millisecond), stopped.name)
	during()
	waitUntilWithin(t, "counter-10's heartbeats to move to "+next.name, 10*time.Second, func() bool {
		f, err := readFleet(next.addr, haFleetToken)
		return err == nil && f["counter-10"].Via == next.name
	})
	time.Sleep(4 * time.Second) // longer than a heartbeat stalled on the stopped gateway
	if err := stopped.a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntilWithin(t, stopped.name+" to follow after SIGCONT", 15*time.Second, func() bool { return !stopped.leading(t) })
	if !next.leading(t) {
		t.Fatalf("%s lost the leadership to the continued %s", next.name, stopped.name)
	}
	waitFleetOnline(t, stopped.addr, haFleetToken, "counter-09", "counter-10")
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
