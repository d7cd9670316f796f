// Package platform is a fake WeChat e-Health Card open platform (and a Su
// Kang Code verification endpoint) for tests, benchmarks and the demo. It
// behaves like the outside world: it checks every signature with its own
// code written from the guide, issues appTokens that expire and are
// invalidated by a newer getAppToken, remembers every requestId it answered
// and answers 10054 to any reuse (guide FAQ 2), counts usage per visit as
// the platform does (verifyQRCode counts a dynamic code's visit,
// reportHISData one visit of a static code or an ID card), knows a set of
// cards, and injects faults on demand. It imports nothing from internal/
// but the pure domain tables of internal/card.
package platform

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
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
	// Strict also enforces the guide's conditional fields and code tables
	// (§3.2.7 department for 挂号 scenes, ID number and name unless the
	// card type is 11; §3.3 scene, card type and channel codes), answering
	// 10042 参数错误 naming the field.
	Strict bool
	Now    func() time.Time
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

// Report is one accepted reportHISData, bindCardRelation or verifyQRCode.
type Report struct {
	API       string            `json:"api"`
	RequestID string            `json:"requestId"`
	Req       map[string]string `json:"req"`
}

// Kinds of counted visit, the keys of Stats.UsageTotals.
const (
	// UsageVerifyDynamic: an accepted verifyQRCode, one visit of its
	// dynamic qrCodeText.
	UsageVerifyDynamic = "verify_dynamic"
	// UsageReportStatic: an accepted reportHISData of card type 11 with a
	// static qrCodeText.
	UsageReportStatic = "report_static"
	// UsageReportDynamic: an accepted reportHISData of card type 11 with a
	// dynamic qrCodeText: that visit was already counted by verifyQRCode,
	// so Usage shows the code twice.
	UsageReportDynamic = "report_dynamic"
	// UsageReportID: an accepted reportHISData of another card type, one
	// visit of its ID number.
	UsageReportID = "report_id"
)

// Stats are the fake's counters.
type Stats struct {
	Calls      map[string]int `json:"calls"`
	Results    map[string]int `json:"results"` // by "api:resultCode"
	Tokens     int            `json:"tokens"`
	Duplicates int            `json:"duplicates"`
	// Reports are the accepted reportHISData and bindCardRelation calls.
	Reports []Report `json:"reports"`
	// Verifications are the accepted verifyQRCode calls.
	Verifications []Report `json:"verifications"`
	// Usage counts visits by qrCodeText (dynamic or static code) or ID
	// number; UsageTotals counts them by kind (UsageVerifyDynamic, ...).
	Usage       map[string]int `json:"usage"`
	UsageTotals map[string]int `json:"usageTotals"`
}

// Server is the fake platform.
type Server struct {
	cfg Config

	mu        sync.Mutex
	token     string
	tokenExp  time.Time
	oldTokens map[string]bool
	seenIDs   map[string]bool      // every requestId answered
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
	s.stats = Stats{Calls: map[string]int{}, Results: map[string]int{}, Usage: map[string]int{}, UsageTotals: map[string]int{}}
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
	return Stats{
		Calls: maps.Clone(s.stats.Calls), Results: maps.Clone(s.stats.Results),
		Tokens: s.stats.Tokens, Duplicates: s.stats.Duplicates,
		Reports: slices.Clone(s.stats.Reports), Verifications: slices.Clone(s.stats.Verifications),
		Usage: maps.Clone(s.stats.Usage), UsageTotals: maps.Clone(s.stats.UsageTotals),
	}
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
