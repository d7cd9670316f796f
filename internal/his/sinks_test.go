package his

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/text/encoding/simplifiedchinese"

	"scanagent/internal/card"
	"scanagent/test/fakehis/server"
)

const pushSecret = "push-secret-0123456789"

// sinkCase builds a sink and a way to read the patient names its receiver
// got.
type sinkCase struct {
	name string
	make func(t *testing.T) (Sink, func() []string)
}

func sinkCases() []sinkCase {
	return []sinkCase{
		{"local-api", func(t *testing.T) (Sink, func() []string) {
			a := NewAPI(APIOptions{Log: zerolog.Nop()})
			return a, func() []string {
				var names []string
				for _, e := range a.hub.snapshot(100) {
					if e.Identity != nil {
						names = append(names, e.Identity.Name)
					}
				}
				return names
			}
		}},
		{"http-push", func(t *testing.T) (Sink, func() []string) {
			fake := server.New(server.Options{Secret: pushSecret})
			srv := httptest.NewServer(fake.Handler())
			t.Cleanup(srv.Close)
			return NewPush(PushOptions{URL: srv.URL + "/push", Secret: []byte(pushSecret), Retries: 1}), func() []string {
				var names []string
				for _, p := range fake.Stats().Pushes {
					if n, _ := p.Identity["name"].(string); n != "" {
						names = append(names, n)
					}
				}
				return names
			}
		}},
		{"hl7-utf8", hl7Case("utf-8")},
		{"hl7-gb18030", hl7Case("gb18030")},
	}
}

func hl7Case(charset string) func(t *testing.T) (Sink, func() []string) {
	return func(t *testing.T) (Sink, func() []string) {
		fake := server.New(server.Options{Charset: charset})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go fake.ServeMLLP(ln)
		h, err := NewHL7(HL7Options{Addr: ln.Addr().String(), Charset: charset, SendingFacility: "HOSP", Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return h, func() []string {
			var names []string
			for _, m := range fake.Stats().HL7 {
				for _, seg := range strings.Split(m, "\r") {
					if f := strings.Split(seg, "|"); f[0] == "PID" && len(f) > 5 {
						names = append(names, f[5])
					}
				}
			}
			return names
		}
	}
}

// TestSinkDeliversIdentities is the contract every sink meets: each
// identified scan reaches the receiver with the patient, in order.
func TestSinkDeliversIdentities(t *testing.T) {
	events := []card.Visit{
		{Type: "scan", ID: "a", Kind: "ehc_static", Verified: true, Identity: &card.Identity{Name: "龙小英", Gender: "女", Birthday: "1988-10-22", IDNumber: "432901198810228888", Phone: "18888882012", Address: "未知地址"}},
		{Type: "scan", ID: "b", Kind: "id_card", Identity: &card.Identity{IDNumber: "11010519491231002X", Name: "张三"}},
		{Type: "scan", ID: "c", Error: &card.VisitError{Code: "unknown", Message: "not a code"}},
		{Type: "scan", ID: "d", Kind: "ehc_dynamic", Verified: true, Identity: &card.Identity{Name: "O'Brien|^~&", IDNumber: "X"}},
	}
	for _, c := range sinkCases() {
		t.Run(c.name, func(t *testing.T) {
			sink, received := c.make(t)
			for _, e := range events {
				if err := sink.Deliver(context.Background(), e); err != nil {
					t.Fatalf("deliver %s: %v", e.ID, err)
				}
			}
			got := received()
			want := []string{"龙小英", "张三", "O'Brien|^~&"}
			if strings.HasPrefix(c.name, "hl7") {
				want[2] = `O'Brien\F\\S\\R\\T\` // escaped in the HL7 field
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("received %q, want %q", got, want)
			}
		})
	}
}

func TestPushSignatureAndRetries(t *testing.T) {
	var calls atomic.Int32
	var lastSig, lastTS string
	var lastBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		lastSig, lastTS = r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp)
		lastBody = make([]byte, r.ContentLength)
		r.Body.Read(lastBody)
		if n == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	p := NewPush(PushOptions{URL: srv.URL, Secret: []byte(pushSecret), Retries: 2})
	if err := p.Deliver(context.Background(), card.Visit{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || lastSig != PushSignature([]byte(pushSecret), lastTS, lastBody) {
		t.Fatalf("calls %d sig %s", calls.Load(), lastSig)
	}
	// A 4xx is not retried; a wrong secret is refused by the fake HIS.
	fake := server.New(server.Options{Secret: "other"})
	fsrv := httptest.NewServer(fake.Handler())
	defer fsrv.Close()
	bad := NewPush(PushOptions{URL: fsrv.URL + "/push", Secret: []byte(pushSecret), Retries: 3})
	if err := bad.Deliver(context.Background(), card.Visit{ID: "y"}); err == nil || fake.Stats().BadPushes != 1 {
		t.Fatalf("wrong secret: %v, bad pushes %d", err, fake.Stats().BadPushes)
	}
	if d, f := bad.Counts(); d != 0 || f != 1 {
		t.Fatalf("counts %d %d", d, f)
	}
	// A dead receiver fails within the deadline.
	dead := NewPush(PushOptions{URL: "http://127.0.0.1:1/push", Timeout: 200 * time.Millisecond, Retries: 1})
	start := time.Now()
	if err := dead.Deliver(context.Background(), card.Visit{ID: "z"}); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("dead receiver: %v after %v", err, time.Since(start))
	}
}

func TestHL7NAKAndReconnect(t *testing.T) {
	fake := server.New(server.Options{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go fake.ServeMLLP(ln)
	h, _ := NewHL7(HL7Options{Addr: ln.Addr().String(), Timeout: time.Second})
	e := card.Visit{ID: "a", Identity: &card.Identity{Name: "张三", IDNumber: "11010519491231002X"}}
	fake.SetNAK(true)
	if err := h.Deliver(context.Background(), e); err == nil || !strings.Contains(err.Error(), "NAK AE") {
		t.Fatalf("NAK: %v", err)
	}
	fake.SetNAK(false)
	// The HIS drops the kept connection: the sink redials once.
	h.mu.Lock()
	h.conn.Close()
	h.mu.Unlock()
	if err := h.Deliver(context.Background(), e); err != nil {
		t.Fatalf("after the HIS closed the connection: %v", err)
	}
	if len(fake.Stats().HL7) != 1 {
		t.Fatal("message not received")
	}
	// Nobody listening: a clear error within the timeout.
	gone, _ := NewHL7(HL7Options{Addr: "127.0.0.1:1", Timeout: 300 * time.Millisecond})
	if err := gone.Deliver(context.Background(), e); err == nil {
		t.Fatal("no listener, no error")
	}
}

func TestHL7Message(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 30, 0, 0, time.UTC)
	h, _ := NewHL7(HL7Options{SendingFacility: "H1", ReceivingApp: "HIS", Now: func() time.Time { return now }})
	msg, err := h.Message(card.Visit{ID: "s", Kind: "ehc_static", Identity: &card.Identity{Name: "龙小英", Gender: "女", Birthday: "1988-10-22",
		IDNumber: "432901198810228888", HealthCardID: "HC1", Phone: "18888882012", Address: "厦门|思明"}}, "C1")
	if err != nil {
		t.Fatal(err)
	}
	want := "MSH|^~\\&|SCANAGENT|H1|HIS||20261123103000||ADT^A04^ADT_A01|C1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r" +
		"EVN|A04|20261123103000\r" +
		"PID|1||432901198810228888^^^^NNCHN~HC1^^^^HC||龙小英||19881022|F|||厦门\\F\\思明||18888882012\r"
	if string(msg) != want {
		t.Fatalf("message\n got %q\nwant %q", msg, want)
	}
	g, _ := NewHL7(HL7Options{Charset: "gb18030", Now: func() time.Time { return now }})
	gb, _ := g.Message(card.Visit{Identity: &card.Identity{Name: "龙小英"}}, "C2")
	if back, _ := simplifiedchinese.GB18030.NewDecoder().Bytes(gb); !strings.Contains(string(back), "|龙小英|") || strings.Contains(string(gb), "龙") {
		t.Fatalf("gb18030 encoding: %q", gb)
	}
	if _, err := NewHL7(HL7Options{Template: "{{.Nope"}); err == nil {
		t.Fatal("bad template accepted")
	}
	if _, err := NewHL7(HL7Options{Charset: "latin1"}); err == nil {
		t.Fatal("bad charset accepted")
	}
}

func FuzzHL7Escape(f *testing.F) {
	f.Add("O'Brien|^~&\\\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		out := hl7Escape(s)
		if strings.ContainsAny(out, "|^~&\r\n") {
			t.Fatalf("delimiter survived escaping: %q → %q", s, out)
		}
	})
}
