// Package server is a fake hospital information system for tests, the demo
// and benchmarks: an HTTP receiver for pushed scan outcomes that checks the
// HMAC signature, an HL7 v2 MLLP listener that ACKs (or NAKs on demand), and
// a small web page acting as a browser HIS that connects to the agent's
// WebSocket, shows the patient and posts the usage report back. It imports
// nothing from internal/: it speaks the wire formats itself.
package server

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

//go:embed page.html
var page string

// Options configures the fake HIS.
type Options struct {
	// Secret checks pushed bodies' HMAC.
	Secret string
	// Charset of HL7 messages: utf-8 or gb18030.
	Charset string
	// AgentURL is the agent's local API, used by the browser page.
	AgentURL string
}

// Push is one received push.
type Push struct {
	ID       string         `json:"id"`
	Kind     string         `json:"kind"`
	Verified bool           `json:"verified"`
	Identity map[string]any `json:"identity"`
	Received time.Time      `json:"received"`
}

// Stats are what the fake received.
type Stats struct {
	Pushes    []Push   `json:"pushes"`
	BadPushes int      `json:"badPushes"`
	HL7       []string `json:"hl7"`
	Browser   []string `json:"browser"`
	NAKs      int      `json:"naks"`
}

// Server is the fake HIS.
type Server struct {
	o     Options
	mu    sync.Mutex
	stats Stats
	nak   bool
}

// New returns a fake HIS.
func New(o Options) *Server { return &Server{o: o} }

// SetNAK makes the MLLP listener answer AE (application error).
func (s *Server) SetNAK(on bool) { s.mu.Lock(); s.nak = on; s.mu.Unlock() }

// Stats returns a copy of what was received.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Pushes: append([]Push(nil), s.stats.Pushes...), BadPushes: s.stats.BadPushes,
		HL7: append([]string(nil), s.stats.HL7...), Browser: append([]string(nil), s.stats.Browser...), NAKs: s.stats.NAKs}
}

// Handler serves the push receiver (/push), the browser page (/) and the
// control endpoints (/_fake/...).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /push", s.servePush)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		agent := r.URL.Query().Get("agent")
		if agent == "" {
			agent = s.o.AgentURL
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, strings.ReplaceAll(page, "{{AGENT}}", agent))
	})
	mux.HandleFunc("POST /_fake/browser", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		s.mu.Lock()
		s.stats.Browser = append(s.stats.Browser, string(b))
		s.mu.Unlock()
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /_fake/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(s.Stats())
	})
	return mux
}

func (s *Server) servePush(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ts := r.Header.Get("X-Scanagent-Timestamp")
	m := hmac.New(sha256.New, []byte(s.o.Secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	sec, _ := strconv.ParseInt(ts, 10, 64)
	fresh := time.Since(time.Unix(sec, 0)).Abs() < 5*time.Minute
	if err != nil || !fresh || !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Scanagent-Signature"))) {
		s.mu.Lock()
		s.stats.BadPushes++
		s.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p Push
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	p.Received = time.Now()
	s.mu.Lock()
	s.stats.Pushes = append(s.stats.Pushes, p)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ServeMLLP accepts HL7 connections on ln until it is closed, ACKing each
// message (AE when NAK mode is on).
func (s *Server) ServeMLLP(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.mllpConn(c)
	}
}

func (s *Server) mllpConn(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	for {
		if _, err := rd.ReadBytes(0x0b); err != nil {
			return
		}
		raw, err := rd.ReadBytes(0x1c)
		if err != nil {
			return
		}
		rd.ReadByte() // 0x0d
		msg := raw[:len(raw)-1]
		if s.o.Charset == "gb18030" {
			if u, err := simplifiedchinese.GB18030.NewDecoder().Bytes(msg); err == nil {
				msg = u
			}
		}
		control := ""
		for _, seg := range strings.Split(string(msg), "\r") {
			if f := strings.Split(seg, "|"); f[0] == "MSH" && len(f) > 9 {
				control = f[9]
			}
		}
		s.mu.Lock()
		code := "AA"
		if s.nak {
			code = "AE"
			s.stats.NAKs++
		} else {
			s.stats.HL7 = append(s.stats.HL7, string(msg))
		}
		s.mu.Unlock()
		ack := fmt.Sprintf("MSH|^~\\&|FAKEHIS||SCANAGENT||%s||ACK^A04|ACK%s|P|2.5\rMSA|%s|%s|%s\r", time.Now().Format("20060102150405"), control, code, control, map[string]string{"AA": "", "AE": "patient rejected"}[code])
		out := []byte(ack)
		if s.o.Charset == "gb18030" {
			out, _ = simplifiedchinese.GB18030.NewEncoder().Bytes(out)
		}
		c.Write(append(append([]byte{0x0b}, out...), 0x1c, 0x0d))
	}
}
