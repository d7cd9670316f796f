package his

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
)

const token = "remote-token-0123456789"

// serve runs one request through h as if it came from peer, and returns the
// recorded answer.
func serve(h http.Handler, method, host, peer string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://"+host+"/v1/scans/last", nil)
	r.RemoteAddr = peer
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHostCheckedOnEveryBinding: with allow_remote the API binds to
// 0.0.0.0, and a page on a rebinding domain reaches it through the user's
// browser as a loopback peer. The Host header is checked whatever the
// binding: loopback names, the machine's own names, nothing else.
func TestHostCheckedOnEveryBinding(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname:", err)
	}
	for _, loopbackOnly := range []bool{true, false} {
		a := NewAPI(APIOptions{AllowedOrigins: []string{allowed}, Token: token, Log: zerolog.Nop()})
		a.Deliver(context.Background(), staticEvent)
		h := a.Handler()
		tests := []struct {
			host, peer, auth string
			status           int
		}{
			{"evil.example", "127.0.0.1:5555", "", 403},
			{"evil.example:8470", "127.0.0.1:5555", "", 403},
			{"evil.example:8470", "[::1]:5555", "", 403},
			{"localhost.evil.example", "127.0.0.1:5555", "", 403},
			{"0.0.0.0:8470", "127.0.0.1:5555", "", 403},
			{"evil.example:8470", "10.1.2.3:5555", "Bearer " + token, 403}, // always, token or not
			{"127.0.0.1:8470", "127.0.0.1:5555", "", 200},
			{"localhost", "127.0.0.1:5555", "", 200},
			{"localhost:8470", "127.0.0.1:5555", "", 200},
			{"LocalHost.:8470", "127.0.0.1:5555", "", 200},
			{"[::1]:8470", "[::1]:5555", "", 200},
			{hostname, "127.0.0.1:5555", "", 200},
			{strings.ToUpper(hostname) + ":8470", "127.0.0.1:5555", "", 200},
		}
		for _, tt := range tests {
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			w := serve(h, "GET", tt.host, tt.peer, hdr)
			if w.Code != tt.status || (tt.status == 403 && strings.Contains(w.Body.String(), "龙")) {
				t.Errorf("loopbackOnly=%v Host %q from %s: %d %s", loopbackOnly, tt.host, tt.peer, w.Code, w.Body)
			}
		}
	}
}

// TestGuardMatrix: who needs the token. A loopback peer without an Origin
// (a local program) does not; a remote peer does; a browser Origin in
// allowed_origins gets CORS and the peer's rule; any other Origin is a page
// the user did not vouch for and needs the token even on loopback (and
// never gets CORS headers).
func TestGuardMatrix(t *testing.T) {
	const local, remote, foreign = "127.0.0.1:5555", "10.1.2.3:5555", "http://evil.example"
	tests := []struct {
		name, peer, origin, auth string
		status                   int
		cors                     bool
	}{
		{"local program", local, "", "", 200, false},
		{"remote no token", remote, "", "", 401, false},
		{"remote wrong token", remote, "", "Bearer wrong", 401, false},
		{"remote token", remote, "", "Bearer " + token, 200, false},
		{"allowed origin local", local, allowed, "", 200, true},
		{"allowed origin remote no token", remote, allowed, "", 401, true},
		{"allowed origin remote token", remote, allowed, "Bearer " + token, 200, true},
		{"foreign origin local no token", local, foreign, "", 403, false},
		{"foreign origin local wrong token", local, foreign, "Bearer wrong", 403, false},
		{"foreign origin local token", local, foreign, "Bearer " + token, 200, false},
		{"foreign origin remote no token", remote, foreign, "", 403, false},
		{"foreign origin remote token", remote, foreign, "Bearer " + token, 200, false},
		{"null origin local", local, "null", "", 403, false},
	}
	for _, loopbackOnly := range []bool{true, false} {
		a := NewAPI(APIOptions{AllowedOrigins: []string{allowed}, Token: token, Log: zerolog.Nop()})
		a.Deliver(context.Background(), staticEvent)
		h := a.Handler()
		for _, tt := range tests {
			hdr := map[string]string{}
			if tt.origin != "" {
				hdr["Origin"] = tt.origin
			}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			w := serve(h, "GET", "127.0.0.1:8470", tt.peer, hdr)
			cors := w.Header().Get("Access-Control-Allow-Origin") != ""
			if w.Code != tt.status || cors != tt.cors || (tt.status != 200 && strings.Contains(w.Body.String(), "龙")) {
				t.Errorf("loopbackOnly=%v %s: %d cors=%v %s", loopbackOnly, tt.name, w.Code, cors, w.Body)
			}
		}
		// A preflight from a foreign origin carries no token: refused.
		if w := serve(h, "OPTIONS", "127.0.0.1:8470", local, map[string]string{"Origin": foreign, "Access-Control-Request-Method": "POST"}); w.Code != 403 {
			t.Errorf("foreign preflight: %d", w.Code)
		}
	}
}

// TestStreamClientCap: WebSocket, SSE and long-poll clients each hold a
// subscription; beyond the cap (64 by default) the API answers 503 with a
// Retry-After instead of taking more.
func TestStreamClientCap(t *testing.T) {
	a, _, srv := newAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bodies []*http.Response
	defer func() {
		for _, b := range bodies {
			b.Body.Close()
		}
	}()
	for i := 0; i < 64; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("client %d: %v %v", i, err, resp)
		}
		bodies = append(bodies, resp)
	}
	if n := a.Clients(); n != 64 {
		t.Fatalf("clients = %d", n)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, resp) // an SSE stream never ends: read only the headers unless refused
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("65th SSE client: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "max_stream_clients") {
		t.Fatalf("65th SSE client: %s", b)
	}
	_, wsResp, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/v1/ws", nil)
	if err == nil || wsResp == nil || wsResp.StatusCode != 503 {
		t.Fatalf("65th WebSocket client: %v %v", err, wsResp)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/scans/next?timeout=1s", "", nil); resp.StatusCode != 503 {
		t.Fatalf("65th long poll: %d", resp.StatusCode)
	}
	// A client that leaves frees its place.
	bodies[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for a.Clients() > 63 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/v1/ws", nil)
	if err != nil {
		t.Fatalf("a place was freed, but: %v", err)
	}
	ws.CloseNow()
}

// syncBuffer is a log destination safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// TestRejectionsLoggedOncePerMinute: a hostile page or a misconfigured HIS
// retrying in a loop must not flood the log: each cause is logged at most
// once a minute, the next line saying how many were suppressed. No personal
// data reaches the log.
func TestRejectionsLoggedOncePerMinute(t *testing.T) {
	var logs syncBuffer
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	rec := &fakeRecorder{}
	a := NewAPI(APIOptions{AllowedOrigins: []string{allowed}, Token: token, Recorder: rec,
		Log: zerolog.New(&logs), Now: clock})
	h := a.Handler()
	post := func(body string) {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8470/v1/usage", strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:5555"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for i := 0; i < 5; i++ {
		serve(h, "GET", "127.0.0.1:8470", "127.0.0.1:5555", map[string]string{"Origin": "http://evil.example"})
		serve(h, "GET", "evil.example", "127.0.0.1:5555", nil)
		serve(h, "GET", "127.0.0.1:8470", "10.1.2.3:5555", nil)
		post(`{"idCardNumber":"432901198810228888","name":"龙小英","scene":"999999"}`)
	}
	for _, cause := range []string{"origin", "host", "token", "bad_request"} {
		if got := logs.lines(fmt.Sprintf(`"cause":%q`, cause)); len(got) != 1 {
			t.Errorf("cause %s: %d log lines, want 1: %q", cause, len(got), got)
		}
	}
	advance(61 * time.Second)
	serve(h, "GET", "127.0.0.1:8470", "127.0.0.1:5555", map[string]string{"Origin": "http://evil.example"})
	got := logs.lines(`"cause":"origin"`)
	if len(got) != 2 || !strings.Contains(got[1], `"suppressed":4`) {
		t.Errorf("after a minute: %q", got)
	}
	all := strings.Join(logs.lines(""), "\n")
	if strings.Contains(all, "432901198810228888") || strings.Contains(all, "龙小英") {
		t.Errorf("personal data in the log: %s", all)
	}
}

// TestHostAllowlist: the machine's names and addresses (read once at start,
// injected here) and his.api.allowed_hosts pass the Host check; nothing
// else does.
func TestHostAllowlist(t *testing.T) {
	a := NewAPI(APIOptions{Token: token, Log: zerolog.Nop(), AllowedHosts: []string{"HIS-Alias.hospital.local.", "192.0.2.7:8470"},
		MachineHosts: func() []string { return []string{"kiosk-12.hospital.local", "10.9.8.7", "fe80::1"} }})
	h := a.Handler()
	tests := []struct {
		host   string
		status int
	}{
		{"kiosk-12.hospital.local:8470", 200},
		{"kiosk-12:8470", 200},
		{"10.9.8.7:8470", 200},
		{"[fe80::1]:8470", 200},
		{"[fe80::1%25eth0]:8470", 200},
		{"his-alias.hospital.local", 200},
		{"192.0.2.7", 200},
		{"[::ffff:127.0.0.1]:8470", 200},
		{"127.1.2.3", 200},
		{"10.9.8.8:8470", 403},
		{"kiosk-13:8470", 403},
		{"hospital.local", 403},
		{"", 403},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "http://127.0.0.1/v1/scans/last", nil)
		r.Host, r.RemoteAddr = tt.host, "127.0.0.1:5555"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status && !(tt.status == 200 && w.Code == 204) {
			t.Errorf("Host %q: %d %s", tt.host, w.Code, w.Body)
		}
	}
}

// TestForeignOriginWebSocketWithToken: a program that sends an Origin not
// in the allowlist (some WebSocket libraries do) gets in with the token.
func TestForeignOriginWebSocketWithToken(t *testing.T) {
	_, _, srv := newAPI(t)
	url := strings.Replace(srv.URL, "http", "ws", 1) + "/v1/ws"
	hdr := http.Header{"Origin": {"http://evil.example"}}
	if _, resp, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: hdr}); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("without token: %v %v", err, resp)
	}
	ws, _, err := websocket.Dial(context.Background(), url+"?access_token="+token, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("with token: %v", err)
	}
	ws.CloseNow()
}

// TestMaxStreamClientsOption: the cap is configurable and counts every kind
// of stream client together.
func TestMaxStreamClientsOption(t *testing.T) {
	a := NewAPI(APIOptions{MaxStreamClients: 2, Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	sse, err := http.DefaultClient.Do(req)
	if err != nil || sse.StatusCode != 200 {
		t.Fatalf("second client: %v %v", err, sse)
	}
	defer sse.Body.Close()
	for _, path := range []string{"/v1/events", "/v1/ws", "/v1/scans/next?timeout=1s"} {
		resp, body := do(t, "GET", srv.URL+path, "", nil)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "max_stream_clients = 2") {
			t.Errorf("%s beyond the cap: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestHostKey(t *testing.T) {
	for in, want := range map[string]string{
		"LocalHost.:8470": "localhost", "[::1]:8470": "::1", "::1": "::1", "[fe80::1%eth0]:1": "fe80::1",
		"10.0.0.1": "10.0.0.1", "his.local": "his.local", "": "", "a:b:c": "a:b:c",
	} {
		if got := hostKey(in); got != want {
			t.Errorf("hostKey(%q) = %q, want %q", in, got, want)
		}
	}
}
