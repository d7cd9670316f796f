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
	"time"

	"scanagent/internal/card"
)

type answer struct {
	code int
	msg  string
	rsp  any
}

// envelope is a decoded request body.
type envelope struct {
	CommonIn map[string]any `json:"commonIn"`
	Req      map[string]any `json:"req"`
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
	if faulty && faultBefore(w, r, f) {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a, requestID := s.answer(api, body, f, faulty)
	s.mu.Lock()
	s.stats.Results[fmt.Sprintf("%s:%d", api, a.code)]++
	s.mu.Unlock()
	if faulty && f.AfterProcess && faultAfter(w, f) {
		return
	}
	out := map[string]any{"commonOut": map[string]any{"requestId": requestID, "resultCode": a.code, "errMsg": a.msg}}
	if a.rsp != nil {
		out["rsp"] = a.rsp
	}
	writeJSON(w, out)
}

// faultBefore applies latency and the faults that hit before processing;
// it reports whether the request was answered.
func faultBefore(w http.ResponseWriter, r *http.Request, f Faults) bool {
	if f.Latency > 0 {
		select {
		case <-time.After(time.Duration(f.Latency)):
		case <-r.Context().Done():
			return true
		}
	}
	if f.AfterProcess {
		return false
	}
	switch {
	case f.Reset:
		reset(w)
	case f.Status != 0:
		http.Error(w, "fault injected", f.Status)
	case f.HTML:
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	default:
		return false
	}
	return true
}

// faultAfter loses the answer of a processed request; it reports whether
// it did.
func faultAfter(w http.ResponseWriter, f Faults) bool {
	switch {
	case f.Reset:
		reset(w)
	case f.Status != 0:
		http.Error(w, "fault injected after processing", f.Status)
	default:
		return false
	}
	return true
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

// answer decides the answer to a request body. Every requestId that gets
// an answer is remembered, whatever the answer (an injected fault code,
// 21003/21004, a refusal): a later request with it is answered 10054
// (guide FAQ 2: each request gets its own requestId).
func (s *Server) answer(api string, body []byte, f Faults, faulty bool) (answer, string) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return answer{code: 20001, msg: "参数格式错误"}, ""
	}
	if env.CommonIn == nil {
		return answer{code: 10003, msg: "请求参数 commonIn 不能为空"}, ""
	}
	requestID := str(env.CommonIn, "requestId")
	if requestID == "" || len(requestID) > 512 {
		return answer{code: 10037, msg: "requestId 字段长度超出限制（512byte）"}, requestID
	}
	if !s.claim(requestID) {
		return answer{code: 10054, msg: "重复请求"}, requestID
	}
	if env.Req == nil {
		return answer{code: 10002, msg: "请求参数 req 不能为空"}, requestID
	}
	if faulty && f.ResultCode != 0 && !f.AfterProcess {
		return answer{code: f.ResultCode, msg: "fault injected"}, requestID
	}
	return s.process(api, requestID, env.CommonIn, env.Req), requestID
}

// claim remembers requestID; false when it was seen before.
func (s *Server) claim(requestID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seenIDs[requestID] {
		s.stats.Duplicates++
		return false
	}
	s.seenIDs[requestID] = true
	return true
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

// process checks the signature and the token and serves api.
func (s *Server) process(api, requestID string, commonIn, req map[string]any) answer {
	if got := str(commonIn, "sign"); got != signature(signingText(commonIn, req), s.cfg.AppSecret) {
		return answer{code: 21006, msg: "签名错误"}
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if api == "getAppToken" {
		return s.getAppToken(req, now)
	}
	if a := s.checkToken(commonIn, now); a.code != 0 {
		return a
	}
	switch api {
	case "getHealthCardByQRCode":
		return s.getHealthCard(req, now)
	case "verifyQRCode":
		return s.verifyQRCode(requestID, req, now)
	case "reportHISData":
		return s.reportHISData(requestID, req)
	case "bindCardRelation":
		return s.bindCardRelation(requestID, req, now)
	}
	return answer{code: 10042, msg: "参数错误: unknown API " + api}
}

// getAppToken issues a new token, invalidating the previous one (§3.2.1).
// Called with s.mu held.
func (s *Server) getAppToken(req map[string]any, now time.Time) answer {
	if str(req, "appId") != s.cfg.AppID {
		return answer{code: 21002, msg: "非法 appId 或 appSecret"}
	}
	if s.token != "" {
		s.oldTokens[s.token] = true
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	s.token, s.tokenExp = hex.EncodeToString(b[:]), now.Add(s.cfg.TokenTTL)
	s.stats.Tokens++
	return answer{rsp: map[string]any{"appToken": s.token, "expiresIn": int(s.cfg.TokenTTL / time.Second)}}
}

// checkToken checks appToken and hospitalId. Called with s.mu held.
func (s *Server) checkToken(commonIn map[string]any, now time.Time) answer {
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
	return answer{}
}

// getHealthCard serves getHealthCardByQRCode (§3.2.4).
func (s *Server) getHealthCard(req map[string]any, now time.Time) answer {
	c, a := s.lookup(str(req, "qrCodeText"), now)
	if a.code != 0 {
		return a
	}
	return answer{rsp: map[string]any{"card": map[string]any{
		"qrCodeText": str(req, "qrCodeText"), "name": c.Name, "gender": c.Gender, "nation": c.Nation, "birthday": c.Birthday,
		"idNumber": c.IDNumber, "idType": c.IDType, "address": c.Address, "phone1": c.Phone, "phid": c.PHID,
		"healthCardId": c.HealthCardID, "adminExt": "{}",
	}}}
}

// verifyQRCode serves §3.2.11; an accepted call counts one visit of the
// dynamic code.
func (s *Server) verifyQRCode(requestID string, req map[string]any, now time.Time) answer {
	if a := missing(req, "qrCodeText", "terminalId", "time", "medicalStep", "useCityCode", "useCityName", "hospitalCode", "hospitalName"); a.code != 0 {
		return a
	}
	if _, err := time.Parse("2006-01-02 15:04:05", str(req, "time")); err != nil {
		return answer{code: 10036, msg: "时间格式错误"}
	}
	if s.cfg.Strict {
		if a := checkCodes(req, codeField{"medicalStep", card.SceneName}, codeField{"useScene", card.SceneName},
			codeField{"useChannel", card.ChannelName}, codeField{"useType", card.CardTypeName}); a.code != 0 {
			return a
		}
	}
	text := str(req, "qrCodeText")
	if !strings.Contains(text, ":0:") {
		return answer{code: 10009, msg: "健康卡授权码不合法"}
	}
	c, a := s.lookup(text, now)
	if a.code != 0 {
		return a
	}
	s.stats.Verifications = append(s.stats.Verifications, Report{API: "verifyQRCode", RequestID: requestID, Req: flatten(req)})
	s.countVisit(UsageVerifyDynamic, text)
	return answer{rsp: map[string]any{
		"address": c.Address, "birthday": c.Birthday, "gender": c.Gender, "healthCardId": c.HealthCardID,
		"idNumber": c.IDNumber, "idType": c.IDType, "name": c.Name, "nation": c.Nation, "phid": c.PHID, "phone": c.Phone,
	}}
}

// reportHISData serves §3.2.7; an accepted call counts one visit of its
// code or ID number.
func (s *Server) reportHISData(requestID string, req map[string]any) answer {
	if a := missing(req, "time", "hospitalId", "scene", "cardType", "cardChannel"); a.code != 0 {
		return a
	}
	healthCard := str(req, "cardType") == card.CardTypeHealthCard
	if healthCard && str(req, "qrCodeText") == "" {
		return answer{code: 10018, msg: "二维码不能为空"}
	}
	idNumber := str(req, "idCardNumber")
	if idNumber == "" {
		idNumber = str(req, "idCard") // the guide's example spells it so
	}
	if s.cfg.Strict {
		if a := s.strictReport(req, healthCard, idNumber); a.code != 0 {
			return a
		}
	}
	s.stats.Reports = append(s.stats.Reports, Report{API: "reportHISData", RequestID: requestID, Req: flatten(req)})
	switch text := str(req, "qrCodeText"); {
	case !healthCard:
		s.countVisit(UsageReportID, idNumber)
	case strings.Contains(text, ":0:"):
		s.countVisit(UsageReportDynamic, text)
	default:
		s.countVisit(UsageReportStatic, text)
	}
	return answer{rsp: map[string]any{"none": ""}}
}

// strictReport checks §3.2.7's conditional fields and the code tables.
func (s *Server) strictReport(req map[string]any, healthCard bool, idNumber string) answer {
	if a := checkCodes(req, codeField{"scene", card.SceneName}, codeField{"cardType", card.CardTypeName}); a.code != 0 {
		return a
	}
	if card.SceneNeedsDepartment(str(req, "scene")) && str(req, "department") == "" {
		return answer{code: 10042, msg: "参数错误: department"}
	}
	if !healthCard && idNumber == "" {
		return answer{code: 10014, msg: "证件号不能为空"}
	}
	if !healthCard && str(req, "name") == "" {
		return answer{code: 10013, msg: "姓名不能为空"}
	}
	return answer{}
}

// bindCardRelation serves §3.2.6.
func (s *Server) bindCardRelation(requestID string, req map[string]any, now time.Time) answer {
	if str(req, "patid") == "" {
		return answer{code: 10033, msg: "患者 ID 不能为空"}
	}
	if _, a := s.lookup(str(req, "qrCodeText"), now); a.code != 0 {
		return a
	}
	s.stats.Reports = append(s.stats.Reports, Report{API: "bindCardRelation", RequestID: requestID, Req: flatten(req)})
	return answer{rsp: map[string]any{"result": true}}
}

// countVisit counts one visit of key. Called with s.mu held.
func (s *Server) countVisit(kind, key string) {
	s.stats.Usage[key]++
	s.stats.UsageTotals[kind]++
}

// missing answers 10042 naming the first required field that is empty.
func missing(req map[string]any, keys ...string) answer {
	for _, k := range keys {
		if str(req, k) == "" {
			return answer{code: 10042, msg: "参数错误: " + k}
		}
	}
	return answer{}
}

// codeField is a request field and the §3.3 table its values come from.
type codeField struct {
	key   string
	known func(string) (string, bool)
}

// checkCodes answers 10042 naming the first field whose non-empty value is
// not in its table.
func checkCodes(req map[string]any, fields ...codeField) answer {
	for _, f := range fields {
		if v := str(req, f.key); v != "" {
			if _, ok := f.known(v); !ok {
				return answer{code: 10042, msg: "参数错误: " + f.key}
			}
		}
	}
	return answer{}
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
