// Package verify turns a recognised code into a verified identity and
// delivers usage reports to the platforms: the WeChat e-Health Card open
// platform (directly, or through a scanagent gateway on the LAN) and the
// Jiangsu Su Kang Code service. It owns signing (verify/sign), the appToken
// holder, typed errors, retries, the circuit breaker and rate-limit pauses.
// It does not import any other stage.
package verify

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// Kinds of request, matching the code kinds of the parser.
const (
	KindEHCStatic  = "ehc_static"
	KindEHCDynamic = "ehc_dynamic"
	KindSKM        = "skm"
	KindIDCard     = "id_card"
	KindCustom     = "custom"
)

// Request is what is to be verified.
type Request struct {
	Kind string `json:"kind"`
	// Text is the qrCodeText or Su Kang Code URL.
	Text string `json:"qrCodeText,omitempty"`
	// IDNumber is set for ID card numbers.
	IDNumber string `json:"idNumber,omitempty"`
	// MedicalStep overrides the configured 用卡环节 for verifyQRCode.
	MedicalStep string `json:"medicalStep,omitempty"`
	// UseScene and UseChannel are verifyQRCode's optional 使用场景 (a
	// 用卡环节 code) and 用卡渠道 (guide §3.2.11), sent when set: the
	// verifyQRCode request is the visit's usage record.
	UseScene   string `json:"useScene,omitempty"`
	UseChannel string `json:"useChannel,omitempty"`
	// TerminalID overrides the configured terminal (set by a gateway from
	// the authenticated terminal).
	TerminalID string `json:"terminalId,omitempty"`
}

// Identity is a patient's identity as the HIS receives it.
type Identity struct {
	Kind         string `json:"kind"`
	Verified     bool   `json:"verified"`
	QRCodeText   string `json:"qrCodeText,omitempty"`
	Name         string `json:"name,omitempty"`
	Gender       string `json:"gender,omitempty"`
	Nation       string `json:"nation,omitempty"`
	Birthday     string `json:"birthday,omitempty"`
	IDType       string `json:"idType,omitempty"`
	IDNumber     string `json:"idNumber,omitempty"`
	Phone        string `json:"phone,omitempty"`
	Address      string `json:"address,omitempty"`
	PHID         string `json:"phid,omitempty"`
	HealthCardID string `json:"healthCardId,omitempty"`
	PatID        string `json:"patid,omitempty"`
	// Level is the Su Kang Code colour (green, yellow, red) and Tip its text.
	Level string `json:"level,omitempty"`
	Tip   string `json:"tip,omitempty"`
}

// Report is one reportHISData call (guide §3.2.7).
type Report struct {
	QRCodeText   string `json:"qrCodeText,omitempty"`
	IDCardNumber string `json:"idCardNumber,omitempty"`
	Name         string `json:"name,omitempty"`
	Time         string `json:"time"`
	Scene        string `json:"scene"`
	Department   string `json:"department,omitempty"`
	CardType     string `json:"cardType"`
	CardChannel  string `json:"cardChannel"`
}

// Binding is one bindCardRelation call (guide §3.2.6).
type Binding struct {
	PatID      string `json:"patid"`
	QRCodeText string `json:"qrCodeText"`
}

// CST is China Standard Time; platform times are written in it whatever
// the host's zone.
var CST = time.FixedZone("CST", 8*3600)

// TimeLayout is the platform's yyyy-MM-dd HH:mm:ss.
const TimeLayout = "2006-01-02 15:04:05"

// FormatTime renders t in CST in the platform's layout.
func FormatTime(t time.Time) string { return t.In(CST).Format(TimeLayout) }

// NewRequestID returns a fresh requestId: 32 upper-case hex digits, like
// the guide's SDK (a UUID without dashes).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// NormalizeIDType writes the platform's idType as two digits: some answers
// carry "0" for 01 居民身份证, or drop the leading zero.
func NormalizeIDType(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "0":
		return "01"
	case len(s) == 1 && s[0] >= '1' && s[0] <= '9':
		return "0" + s
	}
	return s
}
