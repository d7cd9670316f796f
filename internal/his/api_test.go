package his

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

type fakeRecorder struct {
	mu       sync.Mutex
	usages   []Usage
	bindings []Binding
	err      error
}

func (f *fakeRecorder) RecordUsage(_ context.Context, u Usage) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.usages = append(f.usages, u)
	return fmt.Sprint(len(f.usages)), nil
}

func (f *fakeRecorder) RecordBinding(_ context.Context, b Binding) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.bindings = append(f.bindings, b)
	return fmt.Sprint(len(f.bindings)), nil
}

const allowed = "http://his.local:8080"

func newAPI(t *testing.T) (*API, *fakeRecorder, *httptest.Server) {
	rec := &fakeRecorder{}
	a := NewAPI(APIOptions{AllowedOrigins: []string{allowed}, Token: "remote-token-0123456789", Recorder: rec,
		Status: func() map[string]any { return map[string]any{"version": "test"} }, Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, rec, srv
}

var staticEvent = card.Visit{Type: "scan", ID: "s1", Time: time.Now(), Source: "counter", Kind: "ehc_static", Verified: true,
	Identity: &card.Identity{Name: "龙小英", IDNumber: "432901198810228888", QRCodeText: "C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1"}}

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	return resp, b.String()
}

func TestUsageAndBindInputs(t *testing.T) {
	a, rec, srv := newAPI(t)
	a.Deliver(context.Background(), staticEvent)
	a.Deliver(context.Background(), card.Visit{Type: "scan", ID: "refused", Error: &card.VisitError{Code: "unknown"}})
	tests := []struct {
		name, path, body string
		status           int
		has              string
	}{
		{"by scanId", "/v1/usage", `{"scanId":"s1","scene":"010101","department":"内科"}`, 202, `"id":"1"`},
		{"by qrCodeText", "/v1/usage", `{"qrCodeText":"` + staticEvent.Identity.QRCodeText + `","scene":"0101051","cardChannel":"0200"}`, 202, `"id":"2"`},
		{"by id and name", "/v1/usage", `{"idCardNumber":"432901198810228888","name":"龙小英","scene":"010105"}`, 202, `"id":"3"`},
		{"bad json", "/v1/usage", `{"scene":`, 400, "invalid JSON"},
		{"unknown field", "/v1/usage", `{"scanId":"s1","scene":"010101","sceen":"x"}`, 400, "unknown field"},
		{"trailing", "/v1/usage", `{"scanId":"s1","scene":"010101"} {}`, 400, "trailing"},
		{"missing scene", "/v1/usage", `{"scanId":"s1"}`, 400, `"scene"`},
		{"bad channel", "/v1/usage", `{"scanId":"s1","scene":"010101","cardChannel":"01"}`, 400, `"cardChannel"`},
		{"bad time", "/v1/usage", `{"scanId":"s1","scene":"010101","time":"2026/11/23"}`, 400, `"time"`},
		{"unknown scan", "/v1/usage", `{"scanId":"nope","scene":"010101"}`, 400, "unknown or too old"},
		{"refused scan", "/v1/usage", `{"scanId":"refused","scene":"010101"}`, 400, "was refused"},
		{"no card", "/v1/usage", `{"scene":"010101"}`, 400, `"qrCodeText"`},
		{"id without name", "/v1/usage", `{"idCardNumber":"432901198810228888","scene":"010105"}`, 400, `"name"`},
		{"oversized", "/v1/usage", `{"scanId":"s1","scene":"010101","department":"` + strings.Repeat("x", maxBody) + `"}`, 413, "larger than"},
		{"bind by scan", "/v1/bind", `{"scanId":"s1","patid":"P001"}`, 202, `"id":"1"`},
		{"bind no patid", "/v1/bind", `{"scanId":"s1"}`, 400, `"patid"`},
		{"bind no card", "/v1/bind", `{"patid":"P001"}`, 400, `"qrCodeText"`},
		{"wrong method", "/v1/bind", ``, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.status == 405 {
				method = "GET"
			}
			resp, body := do(t, method, srv.URL+tt.path, tt.body, nil)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.has) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	if u := rec.usages[0]; u.QRCodeText != staticEvent.Identity.QRCodeText || u.CardType != "11" || u.Department != "内科" {
		t.Fatalf("usage from scan: %+v", u)
	}
	if u := rec.usages[2]; u.CardType != "01" || u.Name != "龙小英" {
		t.Fatalf("usage by id: %+v", u)
	}
	rec.err = fmt.Errorf("%w: outbox full", ErrQueueRefused)
	resp, body := do(t, "POST", srv.URL+"/v1/usage", `{"scanId":"s1","scene":"010105"}`, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "outbox full") {
		t.Fatalf("queue full: %d %s", resp.StatusCode, body)
	}
	rec.err = errors.New("disk on fire")
	if resp, _ := do(t, "POST", srv.URL+"/v1/usage", `{"scanId":"s1","scene":"010105"}`, nil); resp.StatusCode != 500 {
		t.Fatalf("other error: %d", resp.StatusCode)
	}
}

func TestSecurity(t *testing.T) {
	a, _, srv := newAPI(t)
	a.Deliver(context.Background(), staticEvent)
	// Allowed origin: CORS answered, preflight ok.
	resp, _ := do(t, "OPTIONS", srv.URL+"/v1/usage", "", map[string]string{"Origin": allowed, "Access-Control-Request-Method": "POST"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "GET", srv.URL+"/v1/scans/last", "", map[string]string{"Origin": allowed})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Fatalf("allowed origin: %d", resp.StatusCode)
	}
	// Other origins: refused, no CORS header.
	resp, body := do(t, "GET", srv.URL+"/v1/scans/last", "", map[string]string{"Origin": "http://evil.example"})
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || strings.Contains(body, "龙") {
		t.Fatalf("foreign origin: %d %s", resp.StatusCode, body)
	}
	// DNS rebinding: a foreign Host on a loopback-bound API.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/scans/last", nil)
	req.Host = "attacker.example:8470"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("foreign host: %v %v", resp.StatusCode, err)
	}
	// Remote peers need the token.
	h := a.Handler()
	for _, c := range []struct {
		auth   string
		status int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer remote-token-0123456789", 200}} {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8470/v1/scans/last", nil)
		r.RemoteAddr = "10.1.2.3:5555"
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status || (c.status == 401 && strings.Contains(w.Body.String(), "龙")) {
			t.Fatalf("remote %q: %d %s", c.auth, w.Code, w.Body)
		}
	}
	// WebSocket from a foreign origin is refused before the upgrade.
	_, resp, err := websocket.Dial(context.Background(), strings.Replace(srv.URL, "http", "ws", 1)+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign WebSocket: %v %v", err, resp)
	}
}

// TestSinkContract: every subscriber kind receives each delivered event.
func TestSinkContract(t *testing.T) {
	a, _, srv := newAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, sse := openStreams(ctx, t, srv)
	next := make(chan card.Visit, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/v1/scans/next?timeout=5s")
		if err == nil {
			var e card.Visit
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			next <- e
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for a.Clients() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/scans/last", "", nil); resp.StatusCode != 204 {
		t.Fatalf("last before any scan: %d", resp.StatusCode)
	}
	a.Deliver(ctx, staticEvent)

	_, msg, err := ws.Read(ctx)
	var got card.Visit
	if err != nil || json.Unmarshal(msg, &got) != nil || got.ID != "s1" || got.Identity.Name != "龙小英" {
		t.Fatalf("ws: %s %v", msg, err)
	}
	sc := bufio.NewScanner(sse.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if json.Unmarshal([]byte(data), &got) != nil || got.ID != "s1" {
				t.Fatalf("sse: %s", data)
			}
			break
		}
	}
	if e := <-next; e.ID != "s1" {
		t.Fatalf("long poll: %+v", e)
	}
	resp, body := do(t, "GET", srv.URL+"/v1/scans/last", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"id":"s1"`) {
		t.Fatalf("last: %s", body)
	}
	// The status page data is masked.
	_, body = do(t, "GET", srv.URL+"/v1/status", "", nil)
	if strings.Contains(body, "龙小英") || strings.Contains(body, "432901198810228888") || !strings.Contains(body, "4329**********8888") {
		t.Fatalf("status not masked: %s", body)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/scans/next?timeout=50ms", "", nil); resp.StatusCode != 204 {
		t.Fatalf("next timeout: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/v1/scans/next?timeout=forever", "", nil); resp.StatusCode != 400 {
		t.Fatalf("bad timeout: %d", resp.StatusCode)
	}
}

func TestSlowClientDisconnected(t *testing.T) {
	h := newHub(10)
	s := h.subscribe()
	for i := 0; i < 100; i++ {
		h.publish(card.Visit{ID: fmt.Sprint(i)})
	}
	select {
	case <-s.closed:
	default:
		t.Fatal("a client that never reads was not disconnected")
	}
	if len(h.snapshot(100)) != 10 {
		t.Fatal("recent not bounded")
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	_, rec, srv := newAPI(t)
	hdr := map[string]string{"Idempotency-Key": "his-visit-42"}
	if resp, _ := do(t, "POST", srv.URL+"/v1/bind", `{"qrCodeText":"`+staticEvent.Identity.QRCodeText+`","patid":"P1"}`, hdr); resp.StatusCode != 202 {
		t.Fatal(resp.StatusCode)
	}
	if rec.bindings[0].IdempotencyKey != "his-visit-42" {
		t.Fatalf("key not passed on: %+v", rec.bindings[0])
	}
	hdr["Idempotency-Key"] = strings.Repeat("k", 129)
	if resp, body := do(t, "POST", srv.URL+"/v1/bind", `{"qrCodeText":"`+staticEvent.Identity.QRCodeText+`","patid":"P1"}`, hdr); resp.StatusCode != 400 || !strings.Contains(body, "Idempotency-Key") {
		t.Fatal(resp.StatusCode, body)
	}
}

// CloseStreams (the HTTP server's shutdown: a stop or a reload) ends every
// stream: WebSockets, whose connections are hijacked and which the
// server's shutdown does not touch, get 1012 "service restart" so the HIS
// reconnects; SSE streams end.
func TestCloseStreamsEndsEveryStream(t *testing.T) {
	a, _, srv := newAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, sse := openStreams(ctx, t, srv)
	for a.Clients() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	a.CloseStreams()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Fatalf("WebSocket read: %v, want close 1012 service restart", err)
	}
	if _, err := io.Copy(io.Discard, sse.Body); err != nil {
		t.Fatalf("SSE stream: %v, want its end", err)
	}
	if n := a.Clients(); n != 0 {
		t.Fatalf("%d clients after CloseStreams", n)
	}
}

// openStreams connects a WebSocket (from the allowed origin) and an SSE
// stream to srv, both closed when the test ends.
func openStreams(ctx context.Context, t *testing.T, srv *httptest.Server) (*websocket.Conn, *http.Response) {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {allowed}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	sseReq, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	sse, err := http.DefaultClient.Do(sseReq)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sse.Body.Close() })
	return ws, sse
}
