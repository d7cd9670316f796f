package his

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// A dynamic code as the guide prints it (§6 of SPEC), with a 64-hex card id.
const dynamicQR = "D109C4C3A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001"

var dynamicEvent = card.Visit{Type: "scan", ID: "d1", Source: "counter", Kind: "ehc_dynamic", Verified: true,
	Identity: &card.Identity{Name: "龙小英", IDNumber: "432901198810228888", QRCodeText: dynamicQR}}

var idCardEvent = card.Visit{Type: "scan", ID: "i1", Source: "counter", Kind: "id_card", Verified: false,
	Identity: &card.Identity{IDNumber: "432901198810228888", IDType: "01"}}

// TestUsageDynamicCodeCountedByVerify: verifyQRCode is a dynamic code's
// usage record (guide §3.2.11), so /v1/usage refuses to queue a second count
// for it, whether the HIS names the scan or sends the code's text.
func TestUsageDynamicCodeCountedByVerify(t *testing.T) {
	a, rec, srv := newAPI(t)
	a.Deliver(context.Background(), dynamicEvent)
	a.Deliver(context.Background(), staticEvent)
	tests := []struct {
		name, body string
		status     int
		has        string
	}{
		{"dynamic scanId", `{"scanId":"d1","scene":"0101051"}`, 409, "already counted by verifyQRCode"},
		{"dynamic qrCodeText", `{"qrCodeText":"` + dynamicQR + `","scene":"0101051"}`, 409, "already counted by verifyQRCode"},
		{"dynamic qrCodeText lower case", `{"qrCodeText":"` + strings.ToLower(dynamicQR) + `","scene":"0101051"}`, 409, "already counted by verifyQRCode"},
		{"static scanId", `{"scanId":"s1","scene":"0101051"}`, 202, `"id"`},
		{"static qrCodeText", `{"qrCodeText":"` + staticEvent.Identity.QRCodeText + `","scene":"0101051"}`, 202, `"id"`},
		{"id card", `{"idCardNumber":"432901198810228888","name":"龙小英","scene":"0101051"}`, 202, `"id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", srv.URL+"/v1/usage", tt.body, nil)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.has) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	if len(rec.usages) != 3 {
		t.Fatalf("queued %d reports, want 3 (static scan, static text, id card): %+v", len(rec.usages), rec.usages)
	}
	for _, u := range rec.usages {
		if strings.Contains(strings.ToUpper(u.QRCodeText), ":0:") {
			t.Fatalf("a dynamic code was queued for reportHISData: %+v", u)
		}
	}
}

// TestUsageValidatesWhatItQueues: what /v1/usage accepts is a record the
// platform can take: an e-Health Card code, a GB 11643 number for cardType
// 01, codes from the guide's §3.3 tables, a department where §3.2.7 needs
// one. Anything else is a 400 naming the field, and nothing is queued.
func TestUsageValidatesWhatItQueues(t *testing.T) {
	static := staticEvent.Identity.QRCodeText
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"valid static", `{"qrCodeText":"` + static + `","scene":"0101051","cardChannel":"0200"}`, 202, ""},
		{"channel by the guide's name (§3.2.7 example)", `{"qrCodeText":"` + static + `","scene":"0101051","cardChannel":"服务号"}`, 202, ""},
		{"valid id card", `{"idCardNumber":"432901198810228888","name":"龙小英","scene":"010101","department":"内科"}`, 202, ""},
		{"valid passport", `{"idCardNumber":"E12345678","name":"龙小英","cardType":"03","scene":"010105"}`, 202, ""},
		{"valid id card scan with name", `{"scanId":"i1","name":"龙小英","scene":"010105"}`, 202, ""},
		{"qr not an e-Health Card code", `{"qrCodeText":"X:1","scene":"0101051"}`, 400, "qrCodeText"},
		{"qr is a URL", `{"qrCodeText":"https://example.com/?c=1","scene":"0101051"}`, 400, "qrCodeText"},
		{"qr is an ID number", `{"qrCodeText":"432901198810228888","scene":"0101051"}`, 400, "qrCodeText"},
		{"id fails GB 11643", `{"idCardNumber":"101102199809089988","name":"张三","scene":"0101051"}`, 400, "idCardNumber"},
		{"id wrong length", `{"idCardNumber":"4329011988","name":"张三","scene":"0101051"}`, 400, "idCardNumber"},
		{"cardType 01 without id", `{"qrCodeText":"` + static + `","cardType":"01","scene":"0101051"}`, 400, "idCardNumber"},
		{"name too long", `{"idCardNumber":"432901198810228888","name":"` + strings.Repeat("龙", 65) + `","scene":"0101051"}`, 400, "name"},
		{"unknown scene", `{"qrCodeText":"` + static + `","scene":"999999"}`, 400, "scene"},
		{"scene not in the table", `{"qrCodeText":"` + static + `","scene":"010107"}`, 400, "scene"},
		{"unknown cardType", `{"qrCodeText":"` + static + `","cardType":"12","scene":"0101051"}`, 400, "cardType"},
		{"unknown channel", `{"qrCodeText":"` + static + `","cardChannel":"0500","scene":"0101051"}`, 400, "cardChannel"},
		{"registration without department", `{"qrCodeText":"` + static + `","scene":"010101"}`, 400, "department"},
		{"appointment with blank department", `{"qrCodeText":"` + static + `","scene":"0101011","department":"  "}`, 400, "department"},
		{"same-day registration without department", `{"scanId":"s1","scene":"0101012"}`, 400, "department"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, rec, srv := newAPI(t)
			a.Deliver(context.Background(), staticEvent)
			a.Deliver(context.Background(), idCardEvent)
			resp, body := do(t, "POST", srv.URL+"/v1/usage", tt.body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tt.status != 202 {
				if !strings.Contains(body, `"fields":{`) || !strings.Contains(body, `"`+tt.field+`":`) {
					t.Fatalf("400 does not name %s: %s", tt.field, body)
				}
				if len(rec.usages) != 0 {
					t.Fatalf("an invalid report was queued: %+v", rec.usages)
				}
			}
		})
	}
}

// TestUsageFromIDCardScan: an ID card scan carries no name; the HIS reports
// it with the scan's id and the name it looked up (README's browser example).
func TestUsageFromIDCardScan(t *testing.T) {
	a, rec, srv := newAPI(t)
	a.Deliver(context.Background(), idCardEvent)
	resp, body := do(t, "POST", srv.URL+"/v1/usage", `{"scanId":"i1","name":"龙小英","scene":"010105"}`, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if u := rec.usages[0]; u.IDCardNumber != "432901198810228888" || u.Name != "龙小英" || u.CardType != "01" || u.QRCodeText != "" {
		t.Fatalf("usage from an ID card scan: %+v", u)
	}
}

// TestBindValidatesWhatItQueues: bindCardRelation needs an e-Health Card
// code and a sane HIS patient id.
func TestBindValidatesWhatItQueues(t *testing.T) {
	static := staticEvent.Identity.QRCodeText
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"static", `{"qrCodeText":"` + static + `","patid":"P001"}`, 202, ""},
		{"dynamic", `{"qrCodeText":"` + dynamicQR + `","patid":"P001"}`, 202, ""},
		{"by scan", `{"scanId":"s1","patid":"P001"}`, 202, ""},
		{"qr not an e-Health Card code", `{"qrCodeText":"X:1","patid":"P001"}`, 400, "qrCodeText"},
		{"qr is an ID number", `{"qrCodeText":"432901198810228888","patid":"P001"}`, 400, "qrCodeText"},
		{"id card scan", `{"scanId":"i1","patid":"P001"}`, 400, "scanId"},
		{"blank patid", `{"qrCodeText":"` + static + `","patid":"   "}`, 400, "patid"},
		{"long patid", `{"qrCodeText":"` + static + `","patid":"` + strings.Repeat("9", 65) + `"}`, 400, "patid"},
		{"patid with a line break", `{"qrCodeText":"` + static + `","patid":"P001\nP002"}`, 400, "patid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, rec, srv := newAPI(t)
			a.Deliver(context.Background(), staticEvent)
			a.Deliver(context.Background(), idCardEvent)
			resp, body := do(t, "POST", srv.URL+"/v1/bind", tt.body, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tt.status != 202 && (!strings.Contains(body, `"`+tt.field+`":`) || len(rec.bindings) != 0) {
				t.Fatalf("400 does not name %s or a binding was queued: %s %+v", tt.field, body, rec.bindings)
			}
		})
	}
}

// TestIdempotencyKeyReusedWithOtherBody: a retried POST (same key, same
// body) goes to the recorder, which queues it once; the same key with a
// different body is a client bug and gets 409, not the first record's id.
func TestIdempotencyKeyReusedWithOtherBody(t *testing.T) {
	_, rec, srv := newAPI(t)
	static := staticEvent.Identity.QRCodeText
	bodyA := `{"qrCodeText":"` + static + `","scene":"0101051"}`
	bodyA2 := "{ \"scene\": \"0101051\",\n \"qrCodeText\": \"" + static + "\" }"
	bodyB := `{"qrCodeText":"` + static + `","scene":"010105"}`
	key := map[string]string{"Idempotency-Key": "his-visit-7"}
	steps := []struct {
		name, path, body string
		hdr              map[string]string
		status           int
	}{
		{"first", "/v1/usage", bodyA, key, 202},
		{"retry", "/v1/usage", bodyA, key, 202},
		{"retry, other spelling", "/v1/usage", bodyA2, key, 202},
		{"other body", "/v1/usage", bodyB, key, 409},
		{"other body, no key", "/v1/usage", bodyB, nil, 202},
		{"same key on bind", "/v1/bind", `{"qrCodeText":"` + static + `","patid":"P1"}`, key, 202},
		{"other bind body", "/v1/bind", `{"qrCodeText":"` + static + `","patid":"P2"}`, key, 409},
	}
	for _, s := range steps {
		resp, body := do(t, "POST", srv.URL+s.path, s.body, s.hdr)
		if resp.StatusCode != s.status {
			t.Fatalf("%s: %d %s", s.name, resp.StatusCode, body)
		}
		if s.status == 409 && !strings.Contains(body, "Idempotency-Key") {
			t.Fatalf("%s: 409 does not name the header: %s", s.name, body)
		}
	}
	if len(rec.usages) != 4 || len(rec.bindings) != 1 {
		t.Fatalf("recorder got %d usages, %d bindings", len(rec.usages), len(rec.bindings))
	}
}

// TestInjectedChecks: the agent injects the code parser's checks; the API
// uses them instead of its built-in shapes.
func TestInjectedChecks(t *testing.T) {
	rec := &fakeRecorder{}
	a := NewAPI(APIOptions{Recorder: rec, Log: zerolog.Nop(),
		CheckQRCode: func(s string) (string, bool, error) {
			switch s {
			case "STATIC":
				return s, false, nil
			case "DYNAMIC":
				return s, true, nil
			}
			return "", false, errors.New("no")
		},
		CheckIDNumber: func(s string) error {
			if s != "000000000000000000" {
				return errors.New("no")
			}
			return nil
		}})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	tests := []struct {
		body   string
		status int
	}{
		{`{"qrCodeText":"STATIC","scene":"010105"}`, 202},
		{`{"qrCodeText":"DYNAMIC","scene":"010105"}`, 409},
		{`{"qrCodeText":"` + staticEvent.Identity.QRCodeText + `","scene":"010105"}`, 400},
		{`{"idCardNumber":"000000000000000000","name":"张三","scene":"010105"}`, 202},
		{`{"idCardNumber":"432901198810228888","name":"张三","scene":"010105"}`, 400},
	}
	for _, tt := range tests {
		if resp, body := do(t, "POST", srv.URL+"/v1/usage", tt.body, nil); resp.StatusCode != tt.status {
			t.Errorf("%s: %d %s", tt.body, resp.StatusCode, body)
		}
	}
}

// TestDefaultDepartment: a registration without a department is queued
// when the agent has a department to fill in, with that department.
func TestDefaultDepartment(t *testing.T) {
	rec := &fakeRecorder{}
	a := NewAPI(APIOptions{Recorder: rec, DefaultDepartment: "内科", Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	body := `{"qrCodeText":"` + staticEvent.Identity.QRCodeText + `","scene":"010101"}`
	if resp, b := do(t, "POST", srv.URL+"/v1/usage", body, nil); resp.StatusCode != 202 || rec.usages[0].Department != "内科" {
		t.Fatalf("%d %s %+v", resp.StatusCode, b, rec.usages)
	}
}

// TestIdempotencyKeyAndRecorder: a record that was not queued does not hold
// its key; a recorder that keeps digests durably can answer the conflict.
func TestIdempotencyKeyAndRecorder(t *testing.T) {
	_, rec, srv := newAPI(t)
	static := staticEvent.Identity.QRCodeText
	key := map[string]string{"Idempotency-Key": "k1"}
	rec.err = fmt.Errorf("%w: disk full", ErrQueueRefused)
	if resp, _ := do(t, "POST", srv.URL+"/v1/usage", `{"qrCodeText":"`+static+`","scene":"010105"}`, key); resp.StatusCode != 503 {
		t.Fatal(resp.StatusCode)
	}
	rec.err = nil
	if resp, _ := do(t, "POST", srv.URL+"/v1/usage", `{"qrCodeText":"`+static+`","scene":"0101051"}`, key); resp.StatusCode != 202 {
		t.Fatalf("key of a refused record still held: %d", resp.StatusCode)
	}
	if rec.usages[0].BodyDigest == "" || rec.usages[0].IdempotencyKey != "k1" {
		t.Fatalf("digest not passed on: %+v", rec.usages[0])
	}
	rec.err = fmt.Errorf("%w: seq 7", ErrIdempotencyConflict)
	key["Idempotency-Key"] = "k2"
	if resp, body := do(t, "POST", srv.URL+"/v1/usage", `{"qrCodeText":"`+static+`","scene":"010105"}`, key); resp.StatusCode != 409 || !strings.Contains(body, "Idempotency-Key") {
		t.Fatalf("recorder conflict: %d %s", resp.StatusCode, body)
	}
}

func TestIdemKeysBounded(t *testing.T) {
	k := newIdemKeys()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i := 0; i < maxKeys+10; i++ {
		k.claim(fmt.Sprint(i), "d", t0)
	}
	if len(k.keys) > maxKeys {
		t.Fatalf("%d keys kept", len(k.keys))
	}
	if _, conflict := k.claim("0", "other", t0); conflict {
		t.Fatal("the oldest key was not evicted")
	}
	if _, conflict := k.claim(fmt.Sprint(maxKeys+9), "other", t0); !conflict {
		t.Fatal("a recent key was evicted")
	}
	if _, conflict := k.claim(fmt.Sprint(maxKeys+9), "other", t0.Add(idemWindow)); conflict {
		t.Fatal("a key older than the window was kept")
	}
	for i := 0; i < 3*maxKeys; i++ { // claims that fail and release
		k.claim("r", "d", t0.Add(idemWindow))
		k.release("r")
	}
	if len(k.order) > 2*maxKeys+1 {
		t.Fatalf("order grows with released keys: %d", len(k.order))
	}
}

// The report queued carries the code as the checker normalized it, not as
// the HIS typed it, and a cardType 11 report keeps no name or number (it
// is reported by its code alone, guide §3.2.7); the same for a binding.
func TestUsageStoresTheNormalizedCode(t *testing.T) {
	rec := &fakeRecorder{}
	a := NewAPI(APIOptions{Recorder: rec, Log: zerolog.Nop(),
		CheckQRCode: func(s string) (string, bool, error) {
			return strings.TrimPrefix(strings.TrimSpace(s), "]Q1"), false, nil
		}})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if resp, body := do(t, "POST", srv.URL+"/v1/usage", `{"qrCodeText":" ]Q1CODE:1\r\n","name":"`+strings.Repeat("龙", 500)+`","idCardNumber":"x","scene":"0101051"}`, nil); resp.StatusCode != 202 {
		t.Fatalf("usage: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", srv.URL+"/v1/bind", `{"qrCodeText":" ]Q1CODE:1\r\n","patid":"P1"}`, nil); resp.StatusCode != 202 {
		t.Fatalf("bind: %d %s", resp.StatusCode, body)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.usages) != 1 || rec.usages[0].QRCodeText != "CODE:1" || rec.usages[0].Name != "" || rec.usages[0].IDCardNumber != "" {
		t.Fatalf("queued %+v, want the code CODE:1 and no name or number", rec.usages)
	}
	if len(rec.bindings) != 1 || rec.bindings[0].QRCodeText != "CODE:1" {
		t.Fatalf("bound %+v, want the code CODE:1", rec.bindings)
	}
}
