// Package platform is a fake WeChat e-Health Card open platform (and a Su
// Kang Code verification endpoint) for tests, benchmarks and the demo. It
// behaves like the outside world: it checks every signature, issues appTokens
// that expire and are invalidated by a newer getAppToken, answers 10054 to a
// reused requestId, knows a set of cards, and injects faults on demand. It
// imports nothing from internal/ except the pure signing helper.
package platform

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"scanagent/internal/verify/sign"
)

// Paths of the real platform.
const (
	TokenPath = "/rest/auth/HealthCard/HealthOpenAuth/AuthObj/getAppToken"
	APIPrefix = "/rest/auth/HealthCard/HealthOpenPlatform/ISVOpenObj/"
)

// Card is one patient the fake knows.
type Card struct {
	QRCodeText   string `json:"qrCodeText"`
	Name         string `json:"name"`
	Gender       string `json:"gender"`
	Nation       string `json:"nation"`
	Birthday     string `json:"birthday"`
	IDNumber     string `json:"idNumber"`
	IDType       string `json:"idType"`
	Phone        string `json:"phone"`
	Address      string `json:"address"`
	PHID         string `json:"phid"`
	HealthCardID string `json:"healthCardId"`
	// DynamicQRCodeText, when set, is a dynamic code of this card that never
	// expires (for the demo).
	DynamicQRCodeText string `json:"dynamicQRCodeText,omitempty"`
}

// ID is the card id: the part of the static code before ":1".
func (c Card) ID() string { id, _, _ := strings.Cut(c.QRCodeText, ":"); return id }

// BuiltinCards is the card set used without -cards.
func BuiltinCards() []Card {
	return []Card{
		{QRCodeText: "C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1", Name: "张三", Gender: "男", Nation: "汉族", Birthday: "1949-12-31", IDNumber: "11010519491231002X", IDType: "01", Phone: "18808808808", Address: "北京市西城区", PHID: "36078220180818113110003A1B2", HealthCardID: "A4E0374BCBEAB40E4D66AB5078B44A01",
			DynamicQRCodeText: "C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001"},
		{QRCodeText: "D109C4C340995DFC13262A55699FBDAD85564E8B65796FA1D109C4C340995DFC:1", Name: "龙小英", Gender: "女", Nation: "汉族", Birthday: "1988-10-22", IDNumber: "432901198810228888", IDType: "0", Phone: "18888882012", Address: "未知地址", PHID: "B146D0EA2BB828FC598D64761305A482F955F670193AD7CAA8790DC422463AB7", HealthCardID: "D109C4C340995DFC13262A55699FBDAD85564E8B65796FA1",
			DynamicQRCodeText: "D109C4C340995DFC13262A55699FBDAD85564E8B65796FA1D109C4C340995DFC:0:0E3CC5F50EF5DC663F094C985B58312B::35020001001"},
		{QRCodeText: "0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0:1", Name: "欧阳娜娜", Gender: "女", Nation: "满族", Birthday: "2000-02-29", IDNumber: "350203200002290025", IDType: "01", Phone: "13900001234", Address: "厦门市思明区", PHID: "0F1E2D3C4B5A6978", HealthCardID: "0F1E2D3C4B5A69788796A5B4C3D2E1F0"},
	}
}

// Config configures the fake.
type Config struct {
	AppID      string
	AppSecret  string
	HospitalID string
	TokenTTL   time.Duration
	DynamicTTL time.Duration
	Cards      []Card
	// SKM configures the Su Kang Code endpoint.
	SKM SKMConfig
	Now func() time.Time
}

// Defaults are the guide's example credentials.
func Defaults() Config {
	return Config{
		AppID: "a1a2e0bde41574ad8ea9a4bb58022oop", AppSecret: "8c8e763f443ef983ac33aef1c7085cfb", HospitalID: "90003",
		TokenTTL: 7200 * time.Second, DynamicTTL: 5 * time.Minute, Cards: BuiltinCards(), SKM: DefaultSKM(),
	}
}

// Faults are injected into answers. Zero values inject nothing.
type Faults struct {
	// APIs limits the faults to these API names (all when empty).
	APIs []string `json:"apis,omitempty"`
	// Latency delays every answer.
	Latency Duration `json:"latency,omitempty"`
	// Status answers with this HTTP status (e.g. 502) without processing.
	Status int `json:"status,omitempty"`
	// ResultCode answers with this resultCode (e.g. 10034) without processing.
	ResultCode int `json:"resultCode,omitempty"`
	// HTML answers 200 with an HTML error page, as captive portals do.
	HTML bool `json:"html,omitempty"`
	// Reset closes the connection without an answer.
	Reset bool `json:"reset,omitempty"`
	// AfterProcess applies Status/Reset after the request was processed
	// (the outcome is then unknown to the caller).
	AfterProcess bool `json:"afterProcess,omitempty"`
	// Count limits the faults to the next Count matching calls (0: no limit).
	Count int `json:"count,omitempty"`
	// Until ends the faults at this time (an outage window).
	Until time.Time `json:"until,omitzero"`
}

// Duration reads "250ms" in JSON.
type Duration time.Duration

// UnmarshalJSON accepts a duration string or nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		*d = Duration(v)
		return err
	}
	var n int64
	err := json.Unmarshal(b, &n)
	*d = Duration(n)
	return err
}

// Report is one accepted reportHISData or bindCardRelation.
type Report struct {
	API       string            `json:"api"`
	RequestID string            `json:"requestId"`
	Req       map[string]string `json:"req"`
}

// Stats are the fake's counters.
type Stats struct {
	Calls      map[string]int `json:"calls"`
	Results    map[string]int `json:"results"` // by "api:resultCode"
	Tokens     int            `json:"tokens"`
	Duplicates int            `json:"duplicates"`
	Reports    []Report       `json:"reports"`
}

// Server is the fake platform.
type Server struct {
	cfg Config

	mu        sync.Mutex
	token     string
	tokenExp  time.Time
	oldTokens map[string]bool
	seenIDs   map[string]bool
	dynamic   map[string]time.Time // minted dynamic codes → expiry
	faults    Faults
	stats     Stats
	cards     map[string]Card // by card id
}

// New returns a fake with cfg (zero fields take Defaults).
func New(cfg Config) *Server {
	d := Defaults()
	if cfg.AppID == "" {
		cfg.AppID = d.AppID
	}
	if cfg.AppSecret == "" {
		cfg.AppSecret = d.AppSecret
	}
	if cfg.HospitalID == "" {
		cfg.HospitalID = d.HospitalID
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = d.TokenTTL
	}
	if cfg.DynamicTTL == 0 {
		cfg.DynamicTTL = d.DynamicTTL
	}
	if cfg.Cards == nil {
		cfg.Cards = d.Cards
	}
	if cfg.SKM.Path == "" {
		cfg.SKM = d.SKM
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, oldTokens: map[string]bool{}, seenIDs: map[string]bool{}, dynamic: map[string]time.Time{}, cards: map[string]Card{}}
	s.stats = Stats{Calls: map[string]int{}, Results: map[string]int{}}
	for _, c := range cfg.Cards {
		s.cards[c.ID()] = c
	}
	return s
}

// Handler serves the platform and the /_fake control endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.serveAPI)
	mux.HandleFunc("POST "+APIPrefix+"{api}", s.serveAPI)
	mux.HandleFunc("POST "+s.cfg.SKM.Path, s.serveSKM)
	mux.HandleFunc("POST "+s.cfg.SKM.IDPath, s.serveSKM)
	mux.HandleFunc("GET /_fake/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Stats()) })
	mux.HandleFunc("POST /_fake/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFaults(f)
		writeJSON(w, f)
	})
	mux.HandleFunc("DELETE /_fake/faults", func(w http.ResponseWriter, r *http.Request) { s.SetFaults(Faults{}); w.WriteHeader(204) })
	mux.HandleFunc("POST /_fake/dynamic", func(w http.ResponseWriter, r *http.Request) {
		var q struct {
			Card int `json:"card"`
		}
		_ = json.NewDecoder(r.Body).Decode(&q)
		code, err := s.MintDynamic(q.Card)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]string{"qrCodeText": code})
	})
	mux.HandleFunc("GET /_fake/cards", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.cfg.Cards) })
	return mux
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Calls: map[string]int{}, Results: map[string]int{}, Tokens: s.stats.Tokens, Duplicates: s.stats.Duplicates}
	for k, v := range s.stats.Calls {
		st.Calls[k] = v
	}
	for k, v := range s.stats.Results {
		st.Results[k] = v
	}
	st.Reports = append([]Report(nil), s.stats.Reports...)
	return st
}

// MintDynamic returns a fresh dynamic code of card i that expires after
// DynamicTTL.
func (s *Server) MintDynamic(i int) (string, error) {
	if i < 0 || i >= len(s.cfg.Cards) {
		return "", fmt.Errorf("no card %d", i)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	code := s.cfg.Cards[i].ID() + ":0:" + strings.ToUpper(hex.EncodeToString(b[:])) + "::35020001001"
	s.mu.Lock()
	s.dynamic[code] = s.cfg.Now().Add(s.cfg.DynamicTTL)
	s.mu.Unlock()
	return code, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// activeFault returns the fault to apply to api now, consuming one count.
func (s *Server) activeFault(api string) (Faults, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if f.Latency == 0 && f.Status == 0 && f.ResultCode == 0 && !f.HTML && !f.Reset {
		return Faults{}, false
	}
	if !f.Until.IsZero() && s.cfg.Now().After(f.Until) {
		return Faults{}, false
	}
	if len(f.APIs) > 0 {
		match := false
		for _, a := range f.APIs {
			match = match || a == api
		}
		if !match {
			return Faults{}, false
		}
	}
	if f.Count > 0 {
		s.faults.Count--
		if s.faults.Count == 0 {
			s.faults = Faults{}
		}
	}
	return f, true
}

func reset(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type answer struct {
	code int
	msg  string
	rsp  any
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	api := r.PathValue("api")
	if r.URL.Path == TokenPath {
		api = "getAppToken"
	}
	s.mu.Lock()
	s.stats.Calls[api]++
	s.mu.Unlock()

	f, faulty := s.activeFault(api)
	if faulty && f.Latency > 0 {
		select {
		case <-time.After(time.Duration(f.Latency)):
		case <-r.Context().Done():
			return
		}
	}
	if faulty && !f.AfterProcess {
		switch {
		case f.Reset:
			reset(w)
			return
		case f.Status != 0:
			http.Error(w, "fault injected", f.Status)
			return
		case f.HTML:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
			return
		}
	}

	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var env struct {
		CommonIn map[string]any `json:"commonIn"`
		Req      map[string]any `json:"req"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	requestID := ""
	var a answer
	if err := dec.Decode(&env); err != nil {
		a = answer{code: 20001, msg: "参数格式错误"}
	} else {
		requestID, _ = env.CommonIn["requestId"].(string)
		if faulty && f.ResultCode != 0 && !f.AfterProcess {
			a = answer{code: f.ResultCode, msg: "fault injected"}
		} else {
			a = s.process(api, env.CommonIn, env.Req)
		}
	}
	s.mu.Lock()
	s.stats.Results[fmt.Sprintf("%s:%d", api, a.code)]++
	s.mu.Unlock()
	if faulty && f.AfterProcess {
		if f.Reset {
			reset(w)
			return
		}
		if f.Status != 0 {
			http.Error(w, "fault injected after processing", f.Status)
			return
		}
	}
	out := map[string]any{"commonOut": map[string]any{"requestId": requestID, "resultCode": a.code, "errMsg": a.msg}}
	if a.rsp != nil {
		out["rsp"] = a.rsp
	}
	writeJSON(w, out)
}

func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func (s *Server) process(api string, commonIn, req map[string]any) answer {
	if commonIn == nil {
		return answer{code: 10003, msg: "请求参数 commonIn 不能为空"}
	}
	if req == nil {
		return answer{code: 10002, msg: "请求参数 req 不能为空"}
	}
	text := sign.Text(commonIn, req)
	if got := str(commonIn, "sign"); got != sign.Sign(text, s.cfg.AppSecret) {
		return answer{code: 21006, msg: "签名错误"}
	}
	requestID := str(commonIn, "requestId")
	if requestID == "" || len(requestID) > 512 {
		return answer{code: 10037, msg: "requestId 字段长度超出限制（512byte）"}
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seenIDs[requestID] {
		s.stats.Duplicates++
		return answer{code: 10054, msg: "重复请求"}
	}
	if api == "getAppToken" {
		if str(req, "appId") != s.cfg.AppID {
			return answer{code: 21002, msg: "非法 appId 或 appSecret"}
		}
		s.seenIDs[requestID] = true
		if s.token != "" {
			s.oldTokens[s.token] = true
		}
		var b [16]byte
		_, _ = rand.Read(b[:])
		s.token, s.tokenExp = hex.EncodeToString(b[:]), now.Add(s.cfg.TokenTTL)
		s.stats.Tokens++
		return answer{rsp: map[string]any{"appToken": s.token, "expiresIn": int(s.cfg.TokenTTL / time.Second)}}
	}
	tok := str(commonIn, "appToken")
	switch {
	case tok == "":
		return answer{code: 21001, msg: "appToken 不能为空"}
	case tok != s.token || s.oldTokens[tok]:
		return answer{code: 21004, msg: "非法 appToken 或 hospitalId"}
	case now.After(s.tokenExp):
		return answer{code: 21003, msg: "appToken 超时"}
	case str(commonIn, "hospitalId") != s.cfg.HospitalID:
		return answer{code: 21005, msg: "无权操作该医院 ID"}
	}
	s.seenIDs[requestID] = true
	switch api {
	case "getHealthCardByQRCode":
		c, a := s.lookup(str(req, "qrCodeText"), now)
		if a.code != 0 {
			return a
		}
		return answer{rsp: map[string]any{"card": map[string]any{
			"qrCodeText": str(req, "qrCodeText"), "name": c.Name, "gender": c.Gender, "nation": c.Nation, "birthday": c.Birthday,
			"idNumber": c.IDNumber, "idType": c.IDType, "address": c.Address, "phone1": c.Phone, "phid": c.PHID,
			"healthCardId": c.HealthCardID, "adminExt": "{}",
		}}}
	case "verifyQRCode":
		for _, k := range []string{"qrCodeText", "terminalId", "time", "medicalStep", "useCityCode", "useCityName", "hospitalCode", "hospitalName"} {
			if str(req, k) == "" {
				return answer{code: 10042, msg: "参数错误: " + k}
			}
		}
		if _, err := time.Parse("2006-01-02 15:04:05", str(req, "time")); err != nil {
			return answer{code: 10036, msg: "时间格式错误"}
		}
		text := str(req, "qrCodeText")
		if !strings.Contains(text, ":0:") {
			return answer{code: 10009, msg: "健康卡授权码不合法"}
		}
		c, a := s.lookup(text, now)
		if a.code != 0 {
			return a
		}
		return answer{rsp: map[string]any{
			"address": c.Address, "birthday": c.Birthday, "gender": c.Gender, "healthCardId": c.HealthCardID,
			"idNumber": c.IDNumber, "idType": c.IDType, "name": c.Name, "nation": c.Nation, "phid": c.PHID, "phone": c.Phone,
		}}
	case "reportHISData":
		for _, k := range []string{"time", "hospitalId", "scene", "cardType", "cardChannel"} {
			if str(req, k) == "" {
				return answer{code: 10042, msg: "参数错误: " + k}
			}
		}
		if str(req, "cardType") == "11" && str(req, "qrCodeText") == "" {
			return answer{code: 10018, msg: "二维码不能为空"}
		}
		s.stats.Reports = append(s.stats.Reports, Report{API: api, RequestID: requestID, Req: flatten(req)})
		return answer{}
	case "bindCardRelation":
		if str(req, "patid") == "" {
			return answer{code: 10033, msg: "患者 ID 不能为空"}
		}
		if _, a := s.lookup(str(req, "qrCodeText"), now); a.code != 0 {
			return a
		}
		s.stats.Reports = append(s.stats.Reports, Report{API: api, RequestID: requestID, Req: flatten(req)})
		return answer{rsp: map[string]any{"result": true}}
	}
	return answer{code: 10042, msg: "参数错误: unknown API " + api}
}

func flatten(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = str(m, k)
	}
	return out
}

// lookup finds the card of a static or dynamic code. Called with s.mu held.
func (s *Server) lookup(text string, now time.Time) (Card, answer) {
	if text == "" {
		return Card{}, answer{code: 10018, msg: "二维码不能为空"}
	}
	id, rest, ok := strings.Cut(text, ":")
	if !ok || (rest != "1" && !strings.HasPrefix(rest, "1::") && !strings.HasPrefix(rest, "0:")) {
		return Card{}, answer{code: 10020, msg: "二维码识别失败"}
	}
	c, known := s.cards[id]
	if !known {
		return Card{}, answer{code: -10019, msg: "健康卡不存在"}
	}
	if strings.HasPrefix(rest, "0:") && text != c.DynamicQRCodeText {
		exp, minted := s.dynamic[text]
		if !minted || now.After(exp) {
			return Card{}, answer{code: 10008, msg: "健康卡授权码不存在"}
		}
	}
	return c, answer{}
}
