package his

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/text/encoding/simplifiedchinese"

	"scanagent/internal/card"
)

// MLLP framing bytes.
const (
	mllpStart = 0x0b
	mllpEnd1  = 0x1c
	mllpEnd2  = 0x0d
)

// DefaultHL7Template is an ADT^A04 (register a patient) message carrying the
// identity: MSH, EVN, PID (ID number and health card id as identifiers,
// name, birth date, sex, address, phone). Lines become HL7 segments; every
// field value is escaped.
const DefaultHL7Template = `MSH|^~\&|{{.SendingApp}}|{{.SendingFacility}}|{{.ReceivingApp}}|{{.ReceivingFacility}}|{{.Time}}||ADT^A04^ADT_A01|{{.ControlID}}|P|2.5|||AL|NE|CHN|{{.Charset}}
EVN|A04|{{.Time}}
PID|1||{{.IDNumber}}^^^^NNCHN{{if .HealthCardID}}~{{.HealthCardID}}^^^^HC{{end}}||{{.Name}}||{{.Birth}}|{{.Sex}}|||{{.Address}}||{{.Phone}}`

// HL7Options configures the HL7 v2 MLLP sink.
type HL7Options struct {
	Addr string
	// Charset is "utf-8" or "gb18030".
	Charset           string
	Template          string
	SendingApp        string
	SendingFacility   string
	ReceivingApp      string
	ReceivingFacility string
	// Timeout bounds connect, send and the wait for the ACK.
	Timeout time.Duration
	Log     zerolog.Logger
	Now     func() time.Time
}

// HL7 sends an HL7 v2 message over MLLP for each identified patient and
// waits for the ACK.
type HL7 struct {
	o    HL7Options
	tmpl *template.Template
	seq  atomic.Int64

	mu   sync.Mutex
	conn net.Conn
	rd   *bufio.Reader
}

var _ Sink = (*HL7)(nil)

// NewHL7 compiles the message template.
func NewHL7(o HL7Options) (*HL7, error) {
	if o.Template == "" {
		o.Template = DefaultHL7Template
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SendingApp == "" {
		o.SendingApp = "SCANAGENT"
	}
	switch strings.ToLower(o.Charset) {
	case "", "utf-8", "utf8":
		o.Charset = "utf-8"
	case "gb18030":
		o.Charset = "gb18030"
	default:
		return nil, fmt.Errorf("hl7 charset %q: use utf-8 or gb18030", o.Charset)
	}
	t, err := template.New("hl7").Option("missingkey=error").Parse(o.Template)
	if err != nil {
		return nil, fmt.Errorf("hl7 template: %w", err)
	}
	return &HL7{o: o, tmpl: t}, nil
}

// hl7Escape escapes the HL7 delimiters in a field value.
func hl7Escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\E\`)
		case '|':
			b.WriteString(`\F\`)
		case '^':
			b.WriteString(`\S\`)
		case '~':
			b.WriteString(`\R\`)
		case '&':
			b.WriteString(`\T\`)
		case '\r', '\n':
			b.WriteString(" ")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Message renders the HL7 message of e (segments separated by CR).
func (h *HL7) Message(e card.Visit, controlID string) ([]byte, error) {
	id := e.Identity
	if id == nil {
		return nil, errors.New("no identity")
	}
	sex := map[string]string{"男": "M", "女": "F", "M": "M", "F": "F"}[id.Gender]
	if sex == "" {
		sex = "U"
	}
	charset := "UNICODE UTF-8"
	if h.o.Charset == "gb18030" {
		charset = "GB 18030-2000"
	}
	esc := hl7Escape
	data := map[string]string{
		"SendingApp": esc(h.o.SendingApp), "SendingFacility": esc(h.o.SendingFacility),
		"ReceivingApp": esc(h.o.ReceivingApp), "ReceivingFacility": esc(h.o.ReceivingFacility),
		"Time": h.o.Now().In(card.CST).Format("20060102150405"), "ControlID": esc(controlID), "Charset": charset,
		"IDNumber": esc(id.IDNumber), "HealthCardID": esc(id.HealthCardID), "Name": esc(id.Name),
		"Birth": strings.ReplaceAll(esc(id.Birthday), "-", ""), "Sex": sex, "Address": esc(id.Address), "Phone": esc(id.Phone),
		"PHID": esc(id.PHID), "Kind": esc(string(e.Kind)), "ScanID": esc(e.ID), "Level": esc(id.Level),
	}
	var buf bytes.Buffer
	if err := h.tmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	msg := strings.ReplaceAll(strings.TrimSpace(buf.String()), "\r\n", "\n")
	msg = strings.ReplaceAll(msg, "\n", "\r") + "\r"
	if h.o.Charset == "gb18030" {
		out, err := simplifiedchinese.GB18030.NewEncoder().String(msg)
		if err != nil {
			return nil, fmt.Errorf("gb18030: %w", err)
		}
		return []byte(out), nil
	}
	return []byte(msg), nil
}

// Deliver sends the message of an identified scan and waits for its ACK.
// Refused scans carry no patient and are not sent.
func (h *HL7) Deliver(ctx context.Context, e card.Visit) error {
	if e.Identity == nil {
		return nil
	}
	control := fmt.Sprintf("SA%d%04d", h.o.Now().Unix(), h.seq.Add(1)%10000)
	msg, err := h.Message(e, control)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// A kept connection may have been closed by the HIS: one redial.
	for attempt := 0; attempt < 2; attempt++ {
		err = h.exchange(ctx, msg, control)
		if err == nil || errors.Is(err, errNAK) {
			return err
		}
		h.closeConn()
	}
	return err
}

var errNAK = errors.New("HL7 NAK")

func (h *HL7) closeConn() {
	if h.conn != nil {
		h.conn.Close()
		h.conn, h.rd = nil, nil
	}
}

func (h *HL7) exchange(ctx context.Context, msg []byte, control string) error {
	deadline := time.Now().Add(h.o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if h.conn == nil {
		d := net.Dialer{Deadline: deadline}
		c, err := d.DialContext(ctx, "tcp", h.o.Addr)
		if err != nil {
			return fmt.Errorf("HL7 connect %s: %w", h.o.Addr, err)
		}
		h.conn, h.rd = c, bufio.NewReader(c)
	}
	h.conn.SetDeadline(deadline)
	frame := append(append([]byte{mllpStart}, msg...), mllpEnd1, mllpEnd2)
	if _, err := h.conn.Write(frame); err != nil {
		return fmt.Errorf("HL7 send: %w", err)
	}
	ack, err := readMLLP(h.rd)
	if err != nil {
		return fmt.Errorf("HL7 ACK: %w", err)
	}
	if h.o.Charset == "gb18030" {
		if s, err := simplifiedchinese.GB18030.NewDecoder().Bytes(ack); err == nil {
			ack = s
		}
	}
	return checkACK(string(ack), control)
}

// readMLLP reads one MLLP frame's payload.
func readMLLP(r *bufio.Reader) ([]byte, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == mllpStart {
			break
		}
	}
	var out []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == mllpEnd1 {
			if next, err := r.ReadByte(); err != nil || next != mllpEnd2 {
				return nil, errors.New("bad MLLP trailer")
			}
			return out, nil
		}
		if len(out) > 1<<20 {
			return nil, errors.New("MLLP frame too large")
		}
		out = append(out, b)
	}
}

// checkACK accepts MSA|AA or MSA|CA for our control id.
func checkACK(ack, control string) error {
	for _, seg := range strings.Split(strings.ReplaceAll(ack, "\n", "\r"), "\r") {
		f := strings.Split(seg, "|")
		if f[0] != "MSA" || len(f) < 3 {
			continue
		}
		if f[2] != control {
			return fmt.Errorf("HL7 ACK for control id %q, sent %q", f[2], control)
		}
		switch f[1] {
		case "AA", "CA":
			return nil
		}
		text := ""
		if len(f) > 3 {
			text = f[3]
		}
		return fmt.Errorf("%w %s: %s", errNAK, f[1], text)
	}
	return errors.New("HL7 ACK without an MSA segment")
}
