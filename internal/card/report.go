package card

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Report is one reportHISData call (guide §3.2.7): the usage record of a
// visit. Its JSON is the outbox record's payload.
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

// Binding is one bindCardRelation call (guide §3.2.6). Its JSON is the
// outbox record's payload.
type Binding struct {
	PatID      string `json:"patid"`
	QRCodeText string `json:"qrCodeText"`
}

// Outbox record kinds.
const (
	RecordReport = "report" // reportHISData
	RecordBind   = "bind"   // bindCardRelation
)

// ChannelOther is 用卡渠道 0000 其他, a report's channel when none is known.
const ChannelOther = "0000"

// ReportDefaults are a scan source's usage-report settings: the 用卡环节,
// channel and department its visits are reported with.
type ReportDefaults struct {
	Scene, Channel, Department string
}

// StaticReport is the reportHISData of a static e-Health Card visit.
func (d ReportDefaults) StaticReport(qrCodeText string, at time.Time) Report {
	return Report{QRCodeText: qrCodeText, Time: FormatTime(at), Scene: d.Scene, Department: d.Department,
		CardType: CardTypeHealthCard, CardChannel: d.Channel}
}

// NormalizeChannel is s as a 用卡渠道 code when it names one
// (ChannelCode), else s as it is: what a report carries.
func NormalizeChannel(s string) string {
	if code, ok := ChannelCode(s); ok {
		return code
	}
	return s
}

// Fill completes a report the HIS sent: the time (now), channel and
// department it left out, from d; a channel still unknown is 0000 其他.
func (d ReportDefaults) Fill(r *Report, now time.Time) {
	if r.Time == "" {
		r.Time = FormatTime(now)
	}
	if r.CardChannel == "" {
		r.CardChannel = d.Channel
	}
	if r.CardChannel == "" {
		r.CardChannel = ChannelOther
	}
	r.CardChannel = NormalizeChannel(r.CardChannel)
	if r.Department == "" {
		r.Department = d.Department
	}
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

// NewScanID returns a scan's id: its time in milliseconds (hex) and 64
// random bits, so ids sort by time and never repeat.
func NewScanID(at time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%s", at.UnixMilli(), hex.EncodeToString(b[:]))
}
