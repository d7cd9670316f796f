package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// SKMOptions configures the Su Kang Code client; see skm_protocol.go for
// what is guessed.
type SKMOptions struct {
	BaseURL       string
	ScanPath      string
	IDPath        string
	AppMark       string
	AppSecret     string
	SignOrder     []string
	TimestampUnit string
	Cipher        string
	CipherKey     string
	AuthHeader    string
	Source        string
	Position      string
	VerifierDept  string
	VerifierName  string
	VerifierPhone string
	HTTP          *http.Client
	Log           zerolog.Logger
	Now           func() time.Time
}

// SKM is the Su Kang Code client.
type SKM struct {
	o      SKMOptions
	cipher skmCipher
	last   atomic.Pointer[SKMStatus] // nil: no failure since the last answer
}

// SKMStatus is the client's state for status pages: LastError is the last
// call's failure while the service cannot be used (unreachable, or it
// refuses the configuration), since Since; empty once it answers again. A
// code the service refuses is an answer, not a failure.
type SKMStatus struct {
	LastError string    `json:"lastError,omitempty"`
	Since     time.Time `json:"since,omitzero"`
}

// Status returns the client's state.
func (s *SKM) Status() SKMStatus {
	if p := s.last.Load(); p != nil {
		return *p
	}
	return SKMStatus{}
}

// note keeps the outcome of a call for Status.
func (s *SKM) note(ctx context.Context, err error) {
	switch c := card.ClassOf(err); {
	case ctx.Err() != nil: // the caller gave up: nothing learnt
	case err == nil || c == card.Rejected:
		s.last.Store(nil)
	default:
		st := SKMStatus{LastError: err.Error(), Since: s.o.Now()}
		if p := s.last.Load(); p != nil {
			st.Since = p.Since
		}
		s.last.Store(&st)
	}
}

// NewSKM returns a client.
func NewSKM(o SKMOptions) *SKM {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.HTTP = withoutRedirects(o.HTTP)
	if len(o.SignOrder) == 0 {
		o.SignOrder = []string{"appmark", "appsecret", "timestamp"}
	}
	if o.AuthHeader == "" {
		o.AuthHeader = "auth"
	}
	return &SKM{o: o, cipher: skmCipher{kind: o.Cipher, key: []byte(o.CipherKey)}}
}

// Verify verifies a Su Kang Code URL (scan-code verification).
func (s *SKM) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	if r.Kind != card.KindSKM {
		return card.Identity{}, &card.Error{API: "skm", Class: card.Rejected, Msg: "the Su Kang Code service does not verify " + string(r.Kind) + " codes"}
	}
	body := map[string]string{"url": r.Text}
	id, err := s.post(ctx, "skmScanVerify", s.o.ScanPath, body)
	id.QRCodeText = r.Text
	return id, err
}

// VerifyID verifies an ID number (ID-number verification).
func (s *SKM) VerifyID(ctx context.Context, idNumber, phone string) (card.Identity, error) {
	id, err := s.post(ctx, "skmIDVerify", s.o.IDPath, map[string]string{"papersnumber": idNumber, "phone": phone})
	if err == nil && id.IDNumber == "" {
		id.IDNumber = idNumber
	}
	return id, err
}

func (s *SKM) post(ctx context.Context, api, path string, body map[string]string) (card.Identity, error) {
	for k, v := range map[string]string{"source": s.o.Source, "position": s.o.Position, "verifierDept": s.o.VerifierDept, "verifierName": s.o.VerifierName, "verifierPhone": s.o.VerifierPhone} {
		if v != "" {
			body[k] = v
		}
	}
	data, err := s.send(ctx, api, path, body)
	if err != nil {
		s.note(ctx, err)
		return card.Identity{}, err
	}
	id, err := s.identity(api, data)
	s.note(ctx, err)
	return id, err
}

func skmError(api string, class card.Class, msg string, err error) *card.Error {
	return &card.Error{API: api, Class: class, Msg: msg, Err: err, Unavailable: class == card.Retryable}
}

// send seals body and the auth header, posts them and returns the answer
// of a 200; a redirect is not followed.
func (s *SKM) send(ctx context.Context, api, path string, body map[string]string) ([]byte, error) {
	plain, _ := json.Marshal(body)
	sealed, err := s.cipher.seal(plain)
	if err != nil {
		return nil, skmError(api, card.Fatal, "encrypt body (check skm.cipher_key)", err)
	}
	ts := skmTimestamp(s.o.Now(), s.o.TimestampUnit)
	authJSON, _ := json.Marshal(map[string]string{"appmark": s.o.AppMark, "timestamp": ts, "sign": skmSign(s.o.SignOrder, s.o.AppMark, s.o.AppSecret, ts)})
	auth, err := s.cipher.seal(authJSON)
	if err != nil {
		return nil, skmError(api, card.Fatal, "encrypt auth header", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.o.BaseURL, "/")+path, strings.NewReader(sealed))
	if err != nil {
		return nil, skmError(api, card.Fatal, "bad URL", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set(s.o.AuthHeader, auth)
	resp, err := s.o.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, skmError(api, card.Retryable, "request failed", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil || len(data) > MaxResponse {
		return nil, skmError(api, card.Retryable, "reading answer failed", err)
	}
	switch st := resp.StatusCode; {
	case isRedirect(st):
		return nil, skmError(api, card.Fatal, redirectMsg(st, req.URL.String(), redirectTarget(resp))+": check skm.base_url and paths", nil)
	case st >= 500, st == http.StatusTooManyRequests, st == http.StatusRequestTimeout:
		return nil, skmError(api, card.Retryable, fmt.Sprintf("HTTP %d", st), nil)
	case st != http.StatusOK:
		return nil, skmError(api, card.Fatal, fmt.Sprintf("HTTP %d (check skm.base_url and paths)", st), nil)
	}
	return data, nil
}

// identity decodes a 200 answer into the verified identity.
func (s *SKM) identity(api string, data []byte) (card.Identity, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")) {
		return card.Identity{}, skmError(api, card.Retryable, "answer is an HTML page", nil)
	}
	code, msg, res, tip, err := decodeSKMAnswer(data, s.cipher)
	if err != nil {
		return card.Identity{}, skmError(api, card.Retryable, "malformed answer", err)
	}
	if code != 0 {
		return card.Identity{}, &card.Error{API: api, Class: classifySKM(code), Code: code, Msg: msg}
	}
	if res == nil {
		return card.Identity{}, skmError(api, card.Retryable, "answer carries no res", nil)
	}
	return card.Identity{Name: res.Name, Phone: res.Phone, IDNumber: strings.ToUpper(res.IDCardNo), IDType: "01", Level: s.level(res.Level), Tip: tip}, nil
}

// level normalises the Su Kang Code colour to green, yellow or red.
func (s *SKM) level(raw string) string {
	level := strings.ToLower(strings.TrimSpace(raw))
	switch level {
	case "green", "yellow", "red", "":
	case "绿", "绿色", "绿码":
		level = "green"
	case "黄", "黄色", "黄码":
		level = "yellow"
	case "红", "红色", "红码":
		level = "red"
	default:
		s.o.Log.Warn().Str("level", level).Msg("unknown Su Kang Code level; passed on as is")
	}
	return level
}
