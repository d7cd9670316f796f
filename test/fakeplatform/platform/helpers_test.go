package platform

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// client signs and sends requests to a fake, as an integrator following
// the guide would.
type client struct {
	t      *testing.T
	fake   *Server
	url    string
	clock  *clock
	secret string
	token  string
	// mangle, when set, changes the signing text before signing.
	mangle func(text string) string
}

func newClient(t *testing.T, cfg Config) *client {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	cfg.Now = c.Now
	fake := New(cfg)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return &client{t: t, fake: fake, url: srv.URL, clock: c, secret: Defaults().AppSecret}
}

// raw sends one request and returns the HTTP status and resultCode (-999
// when the answer carries none).
func (c *client) raw(api, token, requestID string, req map[string]any) (int, int) {
	c.t.Helper()
	commonIn := map[string]any{"appToken": token, "requestId": requestID, "hospitalId": Defaults().HospitalID,
		"timestamp": strconv.FormatInt(c.clock.Now().Unix(), 10)}
	text := signingText(commonIn, req)
	if c.mangle != nil {
		text = c.mangle(text)
	}
	commonIn["sign"] = signature(text, c.secret)
	body, _ := json.Marshal(map[string]any{"commonIn": commonIn, "req": req})
	path := APIPrefix + api
	if api == "getAppToken" {
		path = TokenPath
	}
	resp, err := http.Post(c.url+path, "application/json; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return 0, -999
	}
	defer resp.Body.Close()
	var ans struct {
		CommonOut *struct {
			ResultCode int `json:"resultCode"`
		} `json:"commonOut"`
		Rsp struct {
			AppToken string `json:"appToken"`
		} `json:"rsp"`
	}
	if json.NewDecoder(resp.Body).Decode(&ans) != nil || ans.CommonOut == nil {
		return resp.StatusCode, -999
	}
	if api == "getAppToken" && ans.CommonOut.ResultCode == 0 {
		c.token = ans.Rsp.AppToken
	}
	return resp.StatusCode, ans.CommonOut.ResultCode
}

// call sends api with the current token (fetched on first use).
func (c *client) call(api, requestID string, req map[string]any) int {
	c.t.Helper()
	if c.token == "" && api != "getAppToken" {
		c.fetchToken()
	}
	_, code := c.raw(api, c.token, requestID, req)
	return code
}

func (c *client) fetchToken() {
	c.t.Helper()
	if _, code := c.raw("getAppToken", "", newID(), map[string]any{"appId": Defaults().AppID}); code != 0 {
		c.t.Fatalf("getAppToken: %d", code)
	}
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID() string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return "REQ" + strconv.Itoa(idSeq.n)
}

// Requests of each API, valid against the built-in cards.
func staticReport() map[string]any {
	return map[string]any{"qrCodeText": BuiltinCards()[0].QRCodeText, "time": "2026-11-23 18:00:00", "hospitalId": "90003",
		"scene": "010101", "department": "内科", "cardType": "11", "cardChannel": "0100"}
}

func idReport() map[string]any {
	return map[string]any{"idCardNumber": "432901198810228888", "name": "龙小英", "time": "2026-11-23 18:00:00", "hospitalId": "90003",
		"scene": "010104", "cardType": "01", "cardChannel": "0200"}
}

func verifyReq(text string) map[string]any {
	return map[string]any{"qrCodeText": text, "terminalId": "t1", "time": "2026-11-23 18:00:00", "medicalStep": "010101",
		"useCityCode": "350200", "useCityName": "厦门市", "hospitalCode": "90003", "hospitalName": "示例医院"}
}
