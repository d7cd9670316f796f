package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/fleet"
)

const fleetToken = "fleet-viewer-token-0123456789"

// fleetGateway serves a gateway for two terminals with reg as its fleet
// registry and the viewer token tok; logs go to logs.
func fleetGateway(t *testing.T, reg Fleet, tok string, logs *syncBuffer) string {
	t.Helper()
	terms := map[string]string{terminalID: terminalToken, "counter-02": "other-terminal-token-987654"}
	s := New(upstream{}, terms, nil, zerolog.New(logs).Level(zerolog.DebugLevel)).WithFleet(reg, FleetOptions{Token: tok,
		SilentAfter: 5 * time.Minute, OfflineAfter: 90 * time.Second, Gateway: "gw-1"})
	return serve(t, s)
}

// do sends a request and returns the status, a header and the body.
func do(t *testing.T, method, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const heartbeatBody = `{"campus":"东院","version":"1.4.0","health":"degraded","reasons":["queue_backlog"],
"scanners":[{"name":"counter","connected":true,"scans":3}],"queue":{"depth":12,"dead":1,"oldestPendingSeconds":420},
"lastError":"12 reports queued","terminal":"spoofed"}`

// Heartbeats need a terminal's token; the terminal is the authenticated
// one whatever the body says; garbage is answered 400 and stores nothing,
// and the gateway keeps serving.
func TestHeartbeat(t *testing.T) {
	reg := fleet.NewMemory("gw-1", time.Minute, nil)
	logs := &syncBuffer{}
	url := fleetGateway(t, reg, fleetToken, logs)
	for auth, want := range map[string]int{"": 401, "Bearer wrong-token-0123456789": 401, "Bearer " + fleetToken: 401, "Basic eDp5": 401,
		"Bearer " + terminalToken: 200} {
		if got, _, body := do(t, "POST", url+pathHeartbeat, auth, heartbeatBody); got != want {
			t.Errorf("auth %q: HTTP %d %s, want %d", auth, got, body, want)
		}
	}
	ts, _ := reg.List(context.Background())
	if len(ts) != 1 || ts[0].Terminal != terminalID || ts[0].Campus != "东院" || ts[0].Queue.Depth != 12 || !ts[0].Online {
		t.Fatalf("stored %+v", ts)
	}
	for name, body := range map[string]string{
		"not json":      "garbage",
		"empty":         "",
		"bad health":    `{"health":"fine"}`,
		"negative":      `{"health":"ok","queue":{"depth":-1}}`,
		"long campus":   `{"health":"ok","campus":"` + strings.Repeat("x", 65) + `"}`,
		"wrong type":    `{"health":"ok","scanners":"all"}`,
		"control chars": "{\"health\":\"ok\",\"version\":\"1\\u0007\"}",
	} {
		status, _, answer := do(t, "POST", url+pathHeartbeat, "Bearer other-terminal-token-987654", body)
		if status != http.StatusBadRequest || !strings.Contains(answer, `"class":"rejected"`) {
			t.Errorf("%s: HTTP %d %s, want 400 rejected", name, status, answer)
		}
	}
	if status, _, _ := do(t, "POST", url+pathHeartbeat, "Bearer "+terminalToken, `{"health":"ok","campus":"`+strings.Repeat(" ", fleet.MaxBody)+`"}`); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over fleet.MaxBody: HTTP %d, want 413", status)
	}
	if ts, _ := reg.List(context.Background()); len(ts) != 1 {
		t.Fatalf("garbage stored: %+v", ts)
	}
	if status, _, _ := do(t, "POST", url+pathHeartbeat, "Bearer other-terminal-token-987654", `{"health":"ok"}`); status != http.StatusOK {
		t.Fatalf("the gateway stopped taking heartbeats after garbage: HTTP %d", status)
	}
	out := logs.String()
	for _, secret := range []string{terminalToken, fleetToken, "other-terminal-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

// failingFleet is a registry whose etcd is down.
type failingFleet struct{}

func (failingFleet) Beat(context.Context, fleet.Heartbeat) error {
	return errors.New("etcd: context deadline exceeded")
}
func (failingFleet) List(context.Context) ([]fleet.Terminal, error) {
	return nil, errors.New("etcd: context deadline exceeded")
}

// A registry that fails is a retryable answer in the envelope (200: the
// gateway itself is up, the terminal must not open its breaker), and the
// view says it cannot list.
func TestFleetRegistryDown(t *testing.T) {
	url := fleetGateway(t, failingFleet{}, fleetToken, &syncBuffer{})
	status, _, body := do(t, "POST", url+pathHeartbeat, "Bearer "+terminalToken, `{"health":"ok"}`)
	if status != http.StatusOK || !strings.Contains(body, `"class":"retryable"`) || !strings.Contains(body, "fleet registry is unavailable") {
		t.Fatalf("heartbeat with the registry down: %d %s", status, body)
	}
	if status, _, body := do(t, "GET", url+pathFleet, "Bearer "+fleetToken, ""); status != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Fatalf("/v1/fleet with the registry down: %d %s", status, body)
	}
	if status, _, body := do(t, "GET", url+pathFleetPage+"?lang=en", "Bearer "+fleetToken, ""); status != http.StatusOK || !strings.Contains(body, "Cannot read the terminal list") {
		t.Fatalf("/fleet with the registry down: %d %s", status, body)
	}
}

// The view needs the fleet token, as a bearer token or as the password of
// HTTP Basic; without a token configured it is not served at all (404).
func TestFleetViewAuth(t *testing.T) {
	url := fleetGateway(t, fleet.NewMemory("gw-1", time.Minute, nil), fleetToken, &syncBuffer{})
	basic := func(user, pass string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return req.Header.Get("Authorization")
	}
	for _, path := range []string{pathFleet, pathFleetPage} {
		for auth, want := range map[string]int{"": 401, "Bearer " + terminalToken: 401, "Bearer fleet-viewer-token-012345678": 401,
			basic("admin", "wrong"): 401, basic("", fleetToken+"x"): 401,
			"Bearer " + fleetToken: 200, basic("anyone", fleetToken): 200, basic("", fleetToken): 200} {
			status, h, _ := do(t, "GET", url+path, auth, "")
			if status != want {
				t.Errorf("%s with %q: HTTP %d, want %d", path, auth, status, want)
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control %q", path, h.Get("Cache-Control"))
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without a challenge", path)
			}
		}
	}
	if _, h, _ := do(t, "GET", url+pathFleetPage, "", ""); !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("the page's challenge %q: a browser should ask for the password", h.Get("WWW-Authenticate"))
	}
	off := fleetGateway(t, fleet.NewMemory("gw-1", time.Minute, nil), "", &syncBuffer{})
	for _, path := range []string{pathFleet, pathFleetPage} {
		for _, auth := range []string{"", "Bearer " + fleetToken, "Bearer " + terminalToken} {
			if status, _, _ := do(t, "GET", off+path, auth, ""); status != http.StatusNotFound {
				t.Errorf("no fleet token configured: %s with %q answered %d, want 404", path, auth, status)
			}
		}
	}
	if status, _, _ := do(t, "POST", off+pathHeartbeat, "Bearer "+terminalToken, `{"health":"ok"}`); status != http.StatusOK {
		t.Errorf("without a fleet token heartbeats are still taken: HTTP %d", status)
	}
	none := serve(t, New(upstream{}, map[string]string{terminalID: terminalToken}, nil, zerolog.Nop()))
	if status, _, _ := do(t, "POST", none+pathHeartbeat, "Bearer "+terminalToken, `{"health":"ok"}`); status != http.StatusNotFound {
		t.Errorf("a server without a registry: heartbeat HTTP %d, want 404", status)
	}
}

// clockAt is a fixed clock.
func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// fleetOf is a registry with a healthy terminal, a critical one, one
// offline and one silent, seen from now.
func fleetOf(t *testing.T, now time.Time) *fleet.Memory {
	t.Helper()
	clock := now
	reg := fleet.NewMemory("gw-1", 90*time.Second, func() time.Time { return clock })
	for _, b := range []struct {
		id, health, campus string
		ago                time.Duration
	}{
		{"counter-01", fleet.HealthOK, "东院", 10 * time.Second},
		{"counter-02", fleet.HealthCritical, "东院", 20 * time.Second},
		{"kiosk-03", fleet.HealthOK, "<script>alert(1)</script>", 2 * time.Minute},
		{"kiosk-04", fleet.HealthDegraded, "西院", 7 * time.Minute},
	} {
		clock = now.Add(-b.ago)
		hb := fleet.Heartbeat{Terminal: b.id, Campus: b.campus, Version: "1.4.0", Health: b.health,
			Scanners: []fleet.Scanner{{Name: "counter", Connected: b.health == fleet.HealthOK}}, Queue: fleet.Queue{Depth: len(b.id)}}
		if err := reg.Beat(context.Background(), hb); err != nil {
			t.Fatal(err)
		}
	}
	clock = now
	return reg
}

// GET /v1/fleet lists every terminal with its state, colour and silence,
// silent ones first.
func TestFleetJSON(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	s := New(upstream{}, map[string]string{terminalID: terminalToken}, nil, zerolog.Nop()).WithFleet(fleetOf(t, now),
		FleetOptions{Token: fleetToken, SilentAfter: 5 * time.Minute, OfflineAfter: 90 * time.Second, Gateway: "gw-1", Now: clockAt(now)})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", pathFleet+"?sort=terminal", nil)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	s.Handler().ServeHTTP(rec, req)
	var ans struct {
		Result struct {
			Gateway            string         `json:"gateway"`
			SilentAfterSeconds int64          `json:"silentAfterSeconds"`
			Counts             map[string]int `json:"counts"`
			Terminals          []struct {
				Terminal, Health, State, Colour, Campus, LastSeen string
				Online, Silent                                    bool
				SilentForSeconds                                  int64
				Queue                                             struct{ Depth int }
			} `json:"terminals"`
		} `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || rec.Code != 200 {
		t.Fatalf("HTTP %d %v\n%s", rec.Code, err, rec.Body)
	}
	r := ans.Result
	var got []string
	for _, tm := range r.Terminals {
		got = append(got, strings.Join([]string{tm.Terminal, tm.State, tm.Colour, tm.Health}, "/"))
	}
	want := "kiosk-04/silent/grey/degraded counter-01/online/green/ok counter-02/online/red/critical kiosk-03/offline/grey/ok"
	if strings.Join(got, " ") != want {
		t.Fatalf("terminals\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	k := r.Terminals[0]
	if !k.Silent || k.Online || k.SilentForSeconds != 420 || k.Queue.Depth != 8 || k.LastSeen != "2026-11-23T10:23:00Z" || k.Campus != "西院" {
		t.Fatalf("silent terminal: %+v", k)
	}
	if r.Gateway != "gw-1" || r.SilentAfterSeconds != 300 || r.Counts["online"] != 2 || r.Counts["offline"] != 1 || r.Counts["silent"] != 1 || r.Counts["total"] != 4 {
		t.Fatalf("result: %+v", r)
	}
}

// The page: every terminal with its colour, silent ones on top, sort
// links that work without script, both languages, and a terminal's texts
// escaped.
func TestFleetPage(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	s := New(upstream{}, map[string]string{terminalID: terminalToken}, nil, zerolog.Nop()).WithFleet(fleetOf(t, now),
		FleetOptions{Token: fleetToken, SilentAfter: 5 * time.Minute, OfflineAfter: 90 * time.Second, Gateway: "gw-1", Now: clockAt(now)})
	page := func(query, acceptLang string) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", pathFleetPage+query, nil)
		req.SetBasicAuth("it", fleetToken)
		if acceptLang != "" {
			req.Header.Set("Accept-Language", acceptLang)
		}
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("HTTP %d %v", rec.Code, rec.Header())
		}
		return rec.Body.String()
	}
	order := func(body string) string {
		var ids []string
		for _, part := range strings.Split(body, `data-terminal="`)[1:] {
			ids = append(ids, part[:strings.Index(part, `"`)])
		}
		return strings.Join(ids, " ")
	}
	zh := page("", "zh-CN,zh;q=0.9")
	for _, want := range []string{`<html lang="zh-CN">`, "终端总览", `data-level="critical"`, "故障：需要处理", "在线 2 · 离线 1 · 失联 1（超过 5 分钟无心跳）· 故障 1 · 需要关注 0",
		"失联 7 分钟", `class="dot red"`, `class="dot green"`, "1/1 已连接", "0/1 已连接", `href="?lang=zh&amp;sort=-health"`, `href="?lang=en"`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", "离线判定 1 分钟 30 秒", `<tr data-terminal="kiosk-04" data-state="silent" data-colour="grey" class="silent">`} {
		if !strings.Contains(zh, want) {
			t.Errorf("Chinese page lacks %q", want)
		}
	}
	if strings.Contains(zh, "<script>") {
		t.Error("a terminal's campus is not escaped")
	}
	if got := order(zh); got != "kiosk-04 counter-02 kiosk-03 counter-01" {
		t.Errorf("default order %s: silent first, then worst health", got)
	}
	en := page("?sort=-queue", "en-US,en;q=0.9,zh-CN;q=0.5")
	for _, want := range []string{`<html lang="en">`, "Terminal fleet", "silent 7 min", "Queued ▲", `href="?lang=en&amp;sort=queue"`, "0/1 connected", "degraded (7 min ago)"} {
		if !strings.Contains(en, want) {
			t.Errorf("English page lacks %q", want)
		}
	}
	if got := order(en); got != "kiosk-04 kiosk-03 counter-01 counter-02" {
		t.Errorf("order by -queue %s: silent first, then the shortest queue", got)
	}
	if fr := page("", "fr-FR,en"); !strings.Contains(fr, "终端总览") {
		t.Error("a French browser does not get the Chinese page")
	}
	if forced := page("?lang=en", "zh-CN"); !strings.Contains(forced, "Terminal fleet") {
		t.Error("?lang=en does not win over the browser")
	}
}
