package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"scanagent/internal/buildinfo"
	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/fleet"
	"scanagent/internal/ha/etcdtest"
	"scanagent/test/fakeplatform/platform"
)

const termToken = "counter-01-token-0123456789"

// stubGateway is a gateway that answers verifications at once and hands
// each heartbeat (its Authorization header and body) to beat.
func stubGateway(t *testing.T, beat func(auth string, body []byte)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/v1/heartbeat":
			beat(r.Header.Get("Authorization"), body)
			w.Write([]byte(`{"result":{}}`))
		case "/v1/verify":
			w.Write([]byte(`{"result":{"name":"张三","idNumber":"11010519491231002X"}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// terminalConfig is a terminal in gateway mode on urls, with two scanners
// that cannot open and a heartbeat every second.
func terminalConfig(t *testing.T, urls ...string) config.Config {
	t.Helper()
	q := make([]string, len(urls))
	for i, u := range urls {
		q[i] = fmt.Sprintf("%q", u)
	}
	return parse(t, fmt.Sprintf(`[agent]
data_dir = %q
terminal_id = "spoofed"
[platform]
mode = "gateway"
gateway_urls = [%s]
gateway_token = %q
heartbeat_interval = "1s"
campus = "东院"
retries = 0
[his.api]
enabled = false
[[source]]
name = "b"
port = "/dev/null-b"
[[source]]
name = "a"
port = "/dev/null-a"
`, t.TempDir(), strings.Join(q, ", "), termToken))
}

// A terminal's heartbeats go to the gateway that can be reached, with its
// token: its version, health, scanners (by name) and campus, and its
// health's first problem as the last error.
func TestTerminalHeartbeat(t *testing.T) {
	beats := make(chan fleet.Heartbeat, 8)
	url := stubGateway(t, func(auth string, body []byte) {
		if auth != "Bearer "+termToken {
			t.Errorf("heartbeat with Authorization %q", auth)
		}
		hb, err := fleet.Decode(body)
		if err != nil {
			t.Errorf("the gateway would refuse %s: %v", body, err)
		}
		if strings.Contains(string(body), "spoofed") {
			t.Errorf("the heartbeat names the terminal: the gateway takes it from the token: %s", body)
		}
		beats <- hb
	})
	a := start(t, terminalConfig(t, "http://127.0.0.1:1", url), nil, nil)
	stop := a.startHeartbeat(context.Background())
	defer stop()
	var hb fleet.Heartbeat
	select {
	case hb = <-beats:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat reached the second gateway within 5 s")
	}
	if hb.Campus != "东院" || hb.Version != buildinfo.Version || hb.Health != fleet.HealthCritical || len(hb.Scanners) != 2 ||
		hb.Scanners[0].Name != "a" || hb.Scanners[0].Connected || hb.Scanners[0].LastError == "" {
		t.Fatalf("heartbeat %+v", hb)
	}
	if !strings.Contains(hb.LastError, `scanner "a" not connected`) || hb.LastErrorAt.IsZero() || len(hb.Reasons) == 0 || hb.Reasons[0] != ReasonScannerDisconnected {
		t.Fatalf("last error %q at %v, reasons %v", hb.LastError, hb.LastErrorAt, hb.Reasons)
	}
	stop()
	stop() // idempotent
}

// A heartbeat that hangs at the gateway delays no scan.
func TestHeartbeatDoesNotDelayScans(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	arrived := make(chan struct{})
	url := stubGateway(t, func(string, []byte) {
		once.Do(func() { close(arrived) })
		<-release
	})
	defer close(release)
	a := start(t, terminalConfig(t, url), nil, nil)
	stop := a.startHeartbeat(context.Background())
	defer stop()
	<-arrived
	began := time.Now()
	a.pipe.Handle(context.Background(), card.Scan{Data: []byte(platform.BuiltinCards()[1].QRCodeText), Source: "a", At: time.Now()})
	if d := time.Since(began); d > time.Second || a.pipe.Stats().Verified.Load() != 1 {
		t.Fatalf("scan took %v (verified %d) while a heartbeat hung", d, a.pipe.Stats().Verified.Load())
	}
}

// gatewayConfig is a gateway (platform direct, two terminals) with extra
// [gateway] keys.
func gatewayConfig(t *testing.T, extra string) config.Config {
	t.Helper()
	d := platform.Defaults()
	return parse(t, fmt.Sprintf(`[agent]
data_dir = %q
terminal_id = "gw-1"
[platform]
app_id = %q
app_secret = %q
hospital_id = %q
use_city_code = "350200"
use_city_name = "厦门市"
hospital_code = "90003"
hospital_name = "示例医院"
[his.api]
enabled = false
[gateway]
enabled = true
listen = "127.0.0.1:0"
%s
[[gateway.terminal]]
id = "counter-01"
token = %q
`, t.TempDir(), d.AppID, d.AppSecret, d.HospitalID, extra, termToken))
}

// A single gateway keeps the fleet in memory, across a reload too, and
// exposes scanagent_fleet_terminals{campus,state}.
func TestGatewayFleetMetrics(t *testing.T) {
	cfg := gatewayConfig(t, "")
	a := start(t, cfg, nil, nil)
	if _, ok := a.fleet.(*fleet.Memory); !ok {
		t.Fatalf("fleet registry %T, want memory", a.fleet)
	}
	ctx := context.Background()
	for _, hb := range []fleet.Heartbeat{{Terminal: "counter-01", Campus: "东院", Health: fleet.HealthOK},
		{Terminal: "counter-02", Campus: "东院", Health: fleet.HealthDegraded}, {Terminal: "kiosk-01", Campus: "west", Health: fleet.HealthOK}} {
		if err := a.fleet.Beat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	b := start(t, cfg, nil, a.carry())
	f := gather(t, b.obs.reg)
	for _, c := range []struct {
		campus, state string
		want          float64
	}{{"东院", "online", 2}, {"东院", "offline", 0}, {"west", "online", 1}, {"west", "offline", 0}} {
		m := sample(f, "scanagent_fleet_terminals", "campus", c.campus, "state", c.state)
		if m == nil || m.GetGauge().GetValue() != c.want {
			t.Errorf("scanagent_fleet_terminals{campus=%q,state=%q} = %v, want %v", c.campus, c.state, m, c.want)
		}
	}
	if problems, err := testutil.GatherAndLint(b.obs.reg); err != nil || len(problems) > 0 {
		t.Errorf("GatherAndLint: %v %v", problems, err)
	}
	// A terminal has no fleet: no series.
	term := start(t, terminalConfig(t, "http://127.0.0.1:1"), nil, nil)
	if f := gather(t, term.obs.reg); f["scanagent_fleet_terminals"] != nil {
		t.Fatal("a terminal exposes fleet metrics")
	}
}

// Gateways in [gateway.ha] keep the fleet in etcd, on their election
// node's client, under the configured prefix.
func TestGatewayFleetOnEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	cfg := gatewayConfig(t, fmt.Sprintf("[gateway.ha]\nenabled = true\nendpoints = [%q]\nprefix = \"/hosp-a\"\ntoken_key = %q\n",
		etcd.Endpoint, strings.Repeat("ab", 32)))
	a, err := build(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.platform.(io.Closer).Close()
	node := a.platform.(*haEHC).node
	if _, ok := a.fleet.(*fleet.Etcd); !ok {
		t.Fatalf("fleet registry %T, want etcd", a.fleet)
	}
	ctx := context.Background()
	if err := a.fleet.Beat(ctx, fleet.Heartbeat{Terminal: "counter-01", Health: fleet.HealthOK}); err != nil {
		t.Fatal(err)
	}
	resp, err := node.Client().Get(ctx, "/hosp-a/fleet/counter-01")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd holds %v %v", resp, err)
	}
	var v map[string]any
	if json.Unmarshal(resp.Kvs[0].Value, &v); v["via"] != "gw-1" || v["health"] != "ok" {
		t.Fatalf("stored %s", resp.Kvs[0].Value)
	}
}
