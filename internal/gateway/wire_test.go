package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/fleet"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden")

// The gateway wire is byte-for-byte what terminals of earlier versions
// read: testdata/wire.golden was captured from the gateway server as it
// was in internal/verify, before it moved here. A change to it breaks
// deployed terminals; regenerate (go test -run TestWireGolden -update)
// only for an addition they ignore.
func TestWireGolden(t *testing.T) {
	var got strings.Builder
	at := func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }
	reg := fleet.NewMemory("gw-1", 90*time.Second, at) // shared: a heartbeat shows in the fleet
	for _, c := range wireCases {
		status := wireStatus
		if c.noStatus {
			status = nil
		}
		s := New(wireUpstream{}, wireTerminals, status, zerolog.Nop()).WithFleet(reg, FleetOptions{Token: "fleet-viewer-token-0123456789",
			SilentAfter: 5 * time.Minute, OfflineAfter: 90 * time.Second, Gateway: "gw-1", Now: at})
		got.WriteString(exchange(s.Handler(), c))
	}
	const golden = "testdata/wire.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		g, w := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(g), len(w)) {
			var gl, wl string
			if i < len(g) {
				gl = g[i]
			}
			if i < len(w) {
				wl = w[i]
			}
			if gl != wl {
				t.Fatalf("wire differs from %s at line %d:\n got: %s\nwant: %s", golden, i+1, gl, wl)
			}
		}
	}
}

// wireCase is one request to the gateway and what its upstream answers.
type wireCase struct {
	name, method, path, token, body string
	noStatus                        bool
}

var wireCases = []wireCase{
	{name: "verify ok", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"OK:1"}`},
	{name: "verify dynamic ok", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_dynamic","qrCodeText":"OK:0:tok::org","medicalStep":"010102","useScene":"010102","useChannel":"0100"}`},
	{name: "verify skm ok", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"skm","qrCodeText":"https://skm.example/x?OK"}`},
	{name: "verify rejected", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"REJECTED:1"}`},
	{name: "verify fatal", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"FATAL:1"}`},
	{name: "verify breaker open", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"BREAKER:1"}`},
	{name: "verify context ended", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"DEADLINE:1"}`},
	{name: "verify plain error", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"PLAIN:1"}`},
	{name: "verify unknown field", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","bogus":1}`},
	{name: "verify not json", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{`},
	{name: "verify empty body", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: ``},
	{name: "verify too large", method: "POST", path: "/v1/verify", token: "terminal-token-0123456789", body: `{"kind":"ehc_static","qrCodeText":"` + strings.Repeat("A", 70000) + `"}`},
	{name: "verify no token", method: "POST", path: "/v1/verify", body: `{"kind":"ehc_static","qrCodeText":"OK:1"}`},
	{name: "verify wrong token", method: "POST", path: "/v1/verify", token: "terminal-token-012345678", body: `{"kind":"ehc_static","qrCodeText":"OK:1"}`},
	{name: "verify GET", method: "GET", path: "/v1/verify", token: "terminal-token-0123456789"},
	{name: "report ok", method: "POST", path: "/v1/report", token: "terminal-token-0123456789", body: `{"requestId":"OK","report":{"qrCodeText":"OK:1","time":"2026-11-23 18:00:00","scene":"010101","department":"内科","cardType":"11","cardChannel":"0100"}}`},
	{name: "report rate limited", method: "POST", path: "/v1/report", token: "terminal-token-0123456789", body: `{"requestId":"RATE","report":{"scene":"010101"}}`},
	{name: "report duplicate", method: "POST", path: "/v1/report", token: "terminal-token-0123456789", body: `{"requestId":"DUP","report":{"scene":"010101"}}`},
	{name: "report unknown outcome", method: "POST", path: "/v1/report", token: "terminal-token-0123456789", body: `{"requestId":"UNKNOWN","report":{"scene":"010101"}}`},
	{name: "report token expired", method: "POST", path: "/v1/report", token: "terminal-token-0123456789", body: `{"requestId":"EXPIRED","report":{"scene":"010101"}}`},
	{name: "report unknown field", method: "POST", path: "/v1/report", token: "terminal-token-0123456789", body: `{"requestId":"OK","report":{"scene":"010101","extra":1}}`},
	{name: "bind ok", method: "POST", path: "/v1/bind", token: "terminal-token-0123456789", body: `{"requestId":"","binding":{"patid":"P001","qrCodeText":"OK:1"}}`},
	{name: "bind rejected", method: "POST", path: "/v1/bind", token: "terminal-token-0123456789", body: `{"requestId":"REJECTED","binding":{"patid":"P001"}}`},
	{name: "status", method: "GET", path: "/v1/status", token: "other-terminal-token-987654"},
	{name: "status unset", method: "GET", path: "/v1/status", token: "terminal-token-0123456789", noStatus: true},
	{name: "status no token", method: "GET", path: "/v1/status"},
	{name: "unknown path", method: "POST", path: "/v1/nope", token: "terminal-token-0123456789", body: `{}`},
	{name: "heartbeat ok", method: "POST", path: "/v1/heartbeat", token: "terminal-token-0123456789", body: `{"terminal":"spoofed","campus":"东院","version":"1.4.0","health":"degraded","reasons":["queue_backlog"],"scanners":[{"name":"counter","connected":true,"since":"2026-11-23T07:30:12+08:00","scans":212,"reconnects":1}],"queue":{"depth":12,"dead":1,"oldestPendingSeconds":420},"lastScan":"2026-11-23T09:59:00Z","lastError":"12 reports queued <&>","lastErrorAt":"2026-11-23T09:59:30Z","future":true}`},
	{name: "heartbeat invalid", method: "POST", path: "/v1/heartbeat", token: "other-terminal-token-987654", body: `{"health":"green","queue":{"depth":-1}}`},
	{name: "heartbeat not json", method: "POST", path: "/v1/heartbeat", token: "other-terminal-token-987654", body: `{`},
	{name: "heartbeat no token", method: "POST", path: "/v1/heartbeat", body: `{"health":"ok"}`},
	{name: "fleet", method: "GET", path: "/v1/fleet", token: "fleet-viewer-token-0123456789"},
	{name: "fleet terminal token", method: "GET", path: "/v1/fleet", token: "terminal-token-0123456789"},
}

// wireUpstream answers by the code text or requestId of the call.
type wireUpstream struct{}

var retryAt = time.Date(2026, 11, 24, 0, 0, 0, 0, card.CST)

func (wireUpstream) answer(key string) error {
	switch {
	case strings.HasPrefix(key, "REJECTED"):
		return &card.Error{API: "getHealthCardByQRCode", Class: card.Rejected, Code: -10019, Msg: "二维码无效 <a&b>", RequestID: "0123456789ABCDEF0123456789ABCDEF"}
	case strings.HasPrefix(key, "FATAL"):
		return &card.Error{API: "getAppToken", Class: card.Fatal, Code: 21006, Msg: "签名错误", RequestID: "FEDCBA", Err: errors.New("signedKeys appId,nonce")}
	case strings.HasPrefix(key, "BREAKER"):
		return &card.Error{API: "getHealthCardByQRCode", Class: card.Retryable, Msg: "platform unavailable: circuit breaker open", RetryAfter: time.Date(2026, 11, 23, 10, 0, 30, 500, time.UTC), Unavailable: true}
	case strings.HasPrefix(key, "DEADLINE"):
		return context.DeadlineExceeded
	case strings.HasPrefix(key, "PLAIN"):
		return fmt.Errorf("skm: decrypt: %w", errors.New("bad padding"))
	case key == "RATE":
		return fmt.Errorf("queued: %w", &card.Error{API: "reportHISData", Class: card.RateLimited, Code: 10034, Msg: "接口调用次数限制", RequestID: key, RetryAfter: retryAt})
	case key == "DUP":
		return &card.Error{API: "reportHISData", Class: card.Duplicate, Code: 10054, Msg: "重复请求", RequestID: key}
	case key == "UNKNOWN":
		return &card.Error{API: "reportHISData", Class: card.Retryable, Msg: "request failed", RequestID: key, Unknown: true, Unavailable: true, Err: io.ErrUnexpectedEOF}
	case key == "EXPIRED":
		return &card.Error{API: "reportHISData", Class: card.TokenExpired, Code: 21003, Msg: "appToken已过期", RequestID: key}
	}
	return nil
}

func (u wireUpstream) Verify(_ context.Context, r card.Request) (card.Identity, error) {
	if err := u.answer(r.Text); err != nil {
		return card.Identity{}, err
	}
	id := card.Identity{Name: "龙小英", Gender: "2", Nation: "01", Birthday: "19881022", IDType: "01", IDNumber: "432901198810228888",
		Phone: "18888882012", Address: "厦门市<思明区>&\"湖滨\"", PHID: "PH1", HealthCardID: "HC1", PatID: "P001", QRCodeText: r.Text}
	if r.Kind == card.KindSKM {
		id = card.Identity{Name: "龙小英", IDNumber: "432901198810228888", Level: "green", Tip: "绿码 " + r.TerminalID}
	}
	if r.Kind == card.KindEHCDynamic {
		id.Tip = r.TerminalID + "/" + r.MedicalStep + "/" + r.UseScene + "/" + r.UseChannel
	}
	return id, nil
}

func (u wireUpstream) ReportHISData(_ context.Context, r card.Report, requestID string) error {
	return u.answer(requestID)
}

func (u wireUpstream) BindCardRelation(_ context.Context, b card.Binding, requestID string) error {
	return u.answer(requestID)
}

var wireTerminals = map[string]string{"counter-01": "terminal-token-0123456789", "counter-02": "other-terminal-token-987654"}

func wireStatus() any {
	return map[string]any{"mode": "direct", "breakerOpen": false, "note": "<ok & up>"}
}

// exchange sends c to h and writes what came back: status, headers (but
// Date) and body.
func exchange(h http.Handler, c wireCase) string {
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	req.RemoteAddr = "192.0.2.7:40000"
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var b strings.Builder
	fmt.Fprintf(&b, "=== %s: %s %s\n%d\n", c.name, c.method, c.path, rec.Code)
	keys := make([]string, 0, len(rec.Header()))
	for k := range rec.Header() {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(rec.Header()[k], ", "))
	}
	body := rec.Body.String()
	if len(body) > 4096 {
		body = body[:4096] + "…"
	}
	fmt.Fprintf(&b, "%s\n", body)
	return b.String()
}
