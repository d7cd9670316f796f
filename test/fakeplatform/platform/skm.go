package platform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// SKMConfig configures the fake Su Kang Code endpoint. It implements the
// same documented guesses as the agent (AES-128-ECB/PKCS#7 + Base64, MD5 of
// appmark+appsecret+timestamp), written independently.
type SKMConfig struct {
	Path      string
	IDPath    string
	AppMark   string
	AppSecret string
	Key       string // 16 bytes
	// Cipher is "aes-128-ecb" (default) or "sm4-ecb".
	Cipher string
	// Levels maps the value of the URL's t parameter to a card index and a
	// level; "EXPIRED" answers 111.
	Levels map[string]SKMEntry
}

// SKMEntry is one known Su Kang Code.
type SKMEntry struct {
	Card  int
	Level string
}

// DefaultSKM is the fake's built-in Su Kang Code set.
func DefaultSKM() SKMConfig {
	return SKMConfig{
		Path: "/api/skm/scanVerify", IDPath: "/api/skm/idVerify", AppMark: "demo-appmark", AppSecret: "demo-skm-secret", Key: "0123456789abcdef",
		Levels: map[string]SKMEntry{"GREEN0001": {0, "green"}, "YELLOW0002": {1, "yellow"}, "RED0003": {2, "red"}},
	}
}

func (s *Server) serveSKM(w http.ResponseWriter, r *http.Request) {
	api := "skmScanVerify"
	if r.URL.Path == s.cfg.SKM.IDPath {
		api = "skmIDVerify"
	}
	s.mu.Lock()
	s.stats.Calls[api]++
	s.mu.Unlock()
	if f, ok := s.activeFault(api); ok && f.Status != 0 {
		http.Error(w, "fault injected", f.Status)
		return
	}
	answer := func(code int, msg string, data any) {
		out := map[string]any{"retcode": code, "msg": msg}
		if data != nil {
			b, _ := json.Marshal(data)
			out["data"] = s.skmSeal(b)
		}
		writeJSON(w, out)
	}
	authText, err := s.skmOpen(r.Header.Get("auth"))
	var auth struct{ Appmark, Timestamp, Sign string }
	if err != nil || json.Unmarshal(authText, &auth) != nil {
		answer(116, "auth header invalid", nil)
		return
	}
	sum := md5.Sum([]byte(s.cfg.SKM.AppMark + s.cfg.SKM.AppSecret + auth.Timestamp))
	if auth.Appmark != s.cfg.SKM.AppMark || auth.Sign != hex.EncodeToString(sum[:]) {
		answer(118, "sign invalid", nil)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	plain, err := s.skmOpen(string(raw))
	var body map[string]string
	if err != nil || json.Unmarshal(plain, &body) != nil {
		answer(400, "body invalid", nil)
		return
	}
	card, level, code, msg := s.skmLookup(api, body)
	if code != 0 {
		answer(code, msg, nil)
		return
	}
	tip := map[string]string{"green": "绿色: 通行", "yellow": "黄色: 请核验", "red": "红色: 禁止通行"}[level]
	answer(0, "ok", map[string]any{"res": map[string]string{"name": card.Name, "phone": card.Phone, "idcardNo": card.IDNumber, "level": level}, "tip": tip})
}

// skmLookup finds the person of a scan (the code's URL) or of an ID
// number, or the retcode and message refusing it.
func (s *Server) skmLookup(api string, body map[string]string) (Card, string, int, string) {
	if api != "skmScanVerify" {
		for _, c := range s.cfg.Cards {
			if c.IDNumber == body["papersnumber"] {
				return c, "green", 0, ""
			}
		}
		return Card{}, "", 112, "无此人员"
	}
	u, err := url.Parse(body["url"])
	if err != nil || !strings.HasSuffix(u.Hostname(), "jszwfw.gov.cn") {
		return Card{}, "", 112, "非苏康码"
	}
	t := u.Query().Get("t")
	if t == "EXPIRED" {
		return Card{}, "", 111, "二维码已过期"
	}
	e, ok := s.cfg.SKM.Levels[t]
	if !ok || e.Card >= len(s.cfg.Cards) {
		return Card{}, "", 112, "非苏康码"
	}
	return s.cfg.Cards[e.Card], e.Level, 0, ""
}

func (s *Server) skmBlock() (cipher.Block, error) {
	if s.cfg.SKM.Cipher == "sm4-ecb" {
		return newSM4([]byte(s.cfg.SKM.Key))
	}
	return aes.NewCipher([]byte(s.cfg.SKM.Key))
}

func (s *Server) skmSeal(plain []byte) string {
	blk, _ := s.skmBlock()
	pad := 16 - len(plain)%16
	buf := append(append([]byte{}, plain...), strings.Repeat(string(rune(pad)), pad)...)
	for i := 0; i < len(buf); i += 16 {
		blk.Encrypt(buf[i:i+16], buf[i:i+16])
	}
	return base64.StdEncoding.EncodeToString(buf)
}

func (s *Server) skmOpen(text string) ([]byte, error) {
	buf, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(buf) == 0 || len(buf)%16 != 0 {
		return nil, io.ErrUnexpectedEOF
	}
	blk, err := s.skmBlock()
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(buf); i += 16 {
		blk.Decrypt(buf[i:i+16], buf[i:i+16])
	}
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > 16 {
		return nil, io.ErrUnexpectedEOF
	}
	return buf[:len(buf)-pad], nil
}
