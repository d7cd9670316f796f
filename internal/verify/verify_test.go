package verify

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	fake  *platform.Server
	srv   *httptest.Server
	clock *clock
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := newClock()
	fake := platform.New(platform.Config{Now: c.Now})
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return &env{fake: fake, srv: srv, clock: c, logs: &syncBuffer{}}
}

func (e *env) ehcOptions() EHCOptions {
	d := platform.Defaults()
	return EHCOptions{
		AppID: d.AppID, AppSecret: d.AppSecret, HospitalID: d.HospitalID,
		BaseURL: e.srv.URL + platform.APIPrefix, TokenURL: e.srv.URL + platform.TokenPath,
		HTTP: &http.Client{Timeout: 2 * time.Second}, TerminalID: "t1", UseCityCode: "350200", UseCityName: "厦门市",
		HospitalCode: "90003", HospitalName: "示例医院", Retries: 1, BreakerFailures: 3, BreakerCooldown: 30 * time.Second,
		RateLimitPause: time.Hour, Log: zerolog.New(e.logs).Level(zerolog.DebugLevel), Now: e.clock.Now,
	}
}

func (e *env) direct() *EHC { return NewEHC(e.ehcOptions()) }

// client is what the contract suite drives. The suite's gateway arm (a
// terminal's client through a gateway server in front of a direct client)
// runs in internal/gateway, which serves the wire; verify does not import
// it.
type client interface {
	Upstream
	Status() Status
}

func implementations() map[string]func(t *testing.T, e *env) client {
	return map[string]func(t *testing.T, e *env) client{
		"direct": func(t *testing.T, e *env) client { return e.direct() },
	}
}

func wantClass(t *testing.T, err error, class card.Class, code int) *card.Error {
	t.Helper()
	e, ok := card.AsError(err)
	if !ok {
		t.Fatalf("err = %v (%T), want *card.Error %s", err, err, class)
	}
	if e.Class != class || (code != 0 && e.Code != code) {
		t.Fatalf("err = %v, want class %s code %d", e, class, code)
	}
	return e
}

func TestContract(t *testing.T) {
	cards := platform.BuiltinCards()
	for name, newClient := range implementations() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t.Run("static", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				id, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[1].QRCodeText})
				if err != nil {
					t.Fatal(err)
				}
				if id.Name != "龙小英" || id.IDNumber != "432901198810228888" || id.IDType != "01" || id.Phone != "18888882012" {
					t.Fatalf("identity = %+v", id)
				}
			})
			t.Run("dynamic fixed and minted", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				id, err := c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: cards[0].DynamicQRCodeText})
				if err != nil || id.Name != "张三" || id.IDNumber != "11010519491231002X" {
					t.Fatalf("fixed dynamic: %+v %v", id, err)
				}
				code, _ := e.fake.MintDynamic(2)
				if id, err := c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: code}); err != nil || id.Name != "欧阳娜娜" {
					t.Fatalf("minted dynamic: %+v %v", id, err)
				}
				e.clock.Add(6 * time.Minute)
				_, err = c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: code})
				wantClass(t, err, card.Rejected, 10008)
			})
			t.Run("unknown card rejected", func(t *testing.T) {
				e := newEnv(t)
				_, err := newClient(t, e).Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: strings.Repeat("A", 64) + ":1"})
				wantClass(t, err, card.Rejected, -10019)
			})
			t.Run("report and bind delivered once", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", Department: "内科", CardType: "11", CardChannel: "0100"}
				rid := card.NewRequestID()
				if err := c.ReportHISData(ctx, r, rid); err != nil {
					t.Fatal(err)
				}
				if err := c.BindCardRelation(ctx, card.Binding{PatID: "P001", QRCodeText: cards[0].QRCodeText}, ""); err != nil {
					t.Fatal(err)
				}
				// Replaying the same requestId is answered 10054.
				wantClass(t, c.ReportHISData(ctx, r, rid), card.Duplicate, 10054)
				st := e.fake.Stats()
				if len(st.Reports) != 2 || st.Reports[0].RequestID != rid || st.Reports[0].Req["department"] != "内科" {
					t.Fatalf("reports = %+v", st.Reports)
				}
			})
			t.Run("id report uses configured field", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				r := card.Report{IDCardNumber: "432901198810228888", Name: "龙小英", Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "01", CardChannel: "0200"}
				if err := c.ReportHISData(ctx, r, ""); err != nil {
					t.Fatal(err)
				}
				got := e.fake.Stats().Reports[0].Req
				if got["idCardNumber"] != "432901198810228888" || got["name"] != "龙小英" || got["qrCodeText"] != "" {
					t.Fatalf("req = %v", got)
				}
			})
			t.Run("21003 mid-run recovers", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
					t.Fatal(err)
				}
				e.fake.SetFaults(platform.Faults{APIs: []string{"getHealthCardByQRCode"}, ResultCode: 21003, Count: 1})
				if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
					t.Fatalf("after 21003: %v", err)
				}
				if n := e.fake.Stats().Tokens; n != 2 {
					t.Fatalf("tokens fetched = %d, want 2", n)
				}
			})
			t.Run("platform fault is retryable and unavailable", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				e.fake.SetFaults(platform.Faults{Status: 502})
				_, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText})
				if !card.IsUnavailable(err) || card.ClassOf(err) != card.Retryable {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("rate limit pauses the API", func(t *testing.T) {
				e := newEnv(t)
				c := newClient(t, e)
				e.fake.SetFaults(platform.Faults{APIs: []string{"reportHISData"}, ResultCode: 10034, Count: 1})
				r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "11", CardChannel: "0100"}
				err := c.ReportHISData(ctx, r, "")
				wantClass(t, err, card.RateLimited, 10034)
				calls := e.fake.Stats().Calls["reportHISData"]
				err = c.ReportHISData(ctx, r, "")
				ee := wantClass(t, err, card.RateLimited, 0)
				if want := time.Date(2026, 11, 24, 0, 0, 0, 0, card.CST); !ee.RetryAfter.Equal(want) {
					t.Fatalf("RetryAfter = %v, want next card.CST midnight %v", ee.RetryAfter, want)
				}
				if e.fake.Stats().Calls["reportHISData"] != calls {
					t.Fatal("paused API was called")
				}
				// Other APIs keep working.
				if _, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: cards[0].QRCodeText}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestOneTokenForHundredConcurrentCalls(t *testing.T) {
	e := newEnv(t)
	e.fake.SetFaults(platform.Faults{APIs: []string{"getAppToken"}, Latency: platform.Duration(50 * time.Millisecond)})
	c := e.direct()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[i%3].QRCodeText}); err != nil {
				failed.Add(1)
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.fake.Stats().Tokens; n != 1 {
		t.Fatalf("getAppToken called %d times for 100 concurrent verifications, want 1", n)
	}
}

func TestTokenRefreshAheadOfExpiry(t *testing.T) {
	e := newEnv(t)
	c := e.direct()
	ctx := context.Background()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	c.Verify(ctx, req)
	e.clock.Add(7200 * time.Second * 85 / 100)
	c.Verify(ctx, req)
	if n := e.fake.Stats().Tokens; n != 1 {
		t.Fatalf("refreshed before 90%%: %d", n)
	}
	e.clock.Add(7200 * time.Second * 6 / 100)
	if _, err := c.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Stats().Tokens; n != 2 {
		t.Fatalf("tokens = %d, want a refresh after 90%% of expiresIn", n)
	}
	if n := e.fake.Stats().Results["getHealthCardByQRCode:21003"]; n != 0 {
		t.Fatalf("a call hit an expired token: %d", n)
	}
}

func TestTwoHoldersKnockEachOtherOut(t *testing.T) {
	e := newEnv(t)
	a, b := e.direct(), e.direct()
	ctx := context.Background()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	if _, err := a.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, req); err != nil { // invalidates a's token
		t.Fatal(err)
	}
	// a recovers transparently through one refresh (which kills b's).
	if _, err := a.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Stats().Results["getHealthCardByQRCode:21004"]; n != 1 {
		t.Fatalf("21004 answers = %d, want 1", n)
	}
}

func TestBadSecretIsFatalAndLogged(t *testing.T) {
	e := newEnv(t)
	o := e.ehcOptions()
	o.AppSecret = "wrong-secret-0123456789"
	c := NewEHC(o)
	_, err := c.Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText})
	wantClass(t, err, card.Fatal, 21006)
	logs := e.logs.String()
	if !strings.Contains(logs, "signedKeys") || !strings.Contains(logs, "appId") {
		t.Fatalf("fatal configuration error not logged with the signed keys:\n%s", logs)
	}
	for _, secret := range []string{"wrong-secret-0123456789", platform.BuiltinCards()[0].QRCodeText} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log leaks %q:\n%s", secret, logs)
		}
	}
	if e.fake.Stats().Calls["getHealthCardByQRCode"] != 0 {
		// the token fetch itself failed with 21006: no API call followed
		t.Fatal("API called without a token")
	}
}

func TestMalformedAnswers(t *testing.T) {
	tests := map[string]http.HandlerFunc{
		"html":         func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>proxy error</html>")) },
		"not json":     func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) },
		"no commonOut": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"rsp":{}}`)) },
		"bad code":     func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"commonOut":{"resultCode":"x"}}`)) },
		"wrong echo": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"commonOut":{"requestId":"OTHER","resultCode":0},"rsp":{"appToken":"t","expiresIn":7200}}`))
		},
		"huge": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"commonOut":{"resultCode":0},"rsp":{"appToken":"`))
			w.Write(bytes.Repeat([]byte("A"), MaxResponse+10))
			w.Write([]byte(`"}}`))
		},
		"rsp wrong shape": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"commonOut":{"resultCode":0},"rsp":{"appToken":42}}`))
		},
		"500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
		"404": func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := NewEHC(EHCOptions{AppID: "a", AppSecret: "s", HospitalID: "1", BaseURL: srv.URL, TokenURL: srv.URL + "/t", BreakerFailures: 5, BreakerCooldown: time.Second})
			_, err := c.Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: "x:1"})
			e, ok := card.AsError(err)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			want := card.Retryable
			if name == "404" {
				want = card.Fatal
			}
			if e.Class != want {
				t.Fatalf("class = %s (%v), want %s", e.Class, e, want)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	e := newEnv(t)
	c := e.direct()
	ctx := context.Background()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	c.Verify(ctx, req) // token
	e.fake.SetFaults(platform.Faults{Reset: true})
	for i := 0; i < 10; i++ {
		c.Verify(ctx, req)
	}
	calls := e.fake.Stats().Calls["getHealthCardByQRCode"]
	if calls != 1+3 {
		t.Fatalf("platform called %d times, want 4: the breaker must open after 3 faults", calls)
	}
	if !c.Status().BreakerOpen {
		t.Fatal("status does not show the open breaker")
	}
	_, err := c.Verify(ctx, req)
	if !card.IsUnavailable(err) {
		t.Fatalf("open breaker: err = %v", err)
	}
	e.fake.SetFaults(platform.Faults{})
	e.clock.Add(31 * time.Second)
	if _, err := c.Verify(ctx, req); err != nil {
		t.Fatalf("half-open trial: %v", err)
	}
	if c.Status().BreakerOpen {
		t.Fatal("breaker still open after a successful trial")
	}
}

func TestUnknownOutcomeThenDuplicate(t *testing.T) {
	e := newEnv(t)
	c := e.direct()
	ctx := context.Background()
	r := card.Report{QRCodeText: platform.BuiltinCards()[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "11", CardChannel: "0100"}
	c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: r.QRCodeText})
	e.fake.SetFaults(platform.Faults{APIs: []string{"reportHISData"}, Reset: true, AfterProcess: true, Count: 1})
	rid := card.NewRequestID()
	err := c.ReportHISData(ctx, r, rid)
	ee := wantClass(t, err, card.Retryable, 0)
	if !ee.Unknown || ee.RequestID != rid {
		t.Fatalf("outcome should be unknown with requestId kept: %+v", ee)
	}
	wantClass(t, c.ReportHISData(ctx, r, rid), card.Duplicate, 10054)
	if n := len(e.fake.Stats().Reports); n != 1 {
		t.Fatalf("reports = %d", n)
	}
}

func TestDynamicNotRetriedAfterUnknownOutcome(t *testing.T) {
	e := newEnv(t)
	c := e.direct()
	ctx := context.Background()
	c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText})
	e.fake.SetFaults(platform.Faults{APIs: []string{"verifyQRCode"}, Status: 502, AfterProcess: true})
	c.Verify(ctx, card.Request{Kind: card.KindEHCDynamic, Text: platform.BuiltinCards()[0].DynamicQRCodeText})
	if n := e.fake.Stats().Calls["verifyQRCode"]; n != 1 {
		t.Fatalf("dynamic code sent %d times after an unknown outcome", n)
	}
}

func TestFormatTimeIsCST(t *testing.T) {
	utc := time.Date(2026, 11, 23, 18, 30, 0, 0, time.UTC)
	if got := card.FormatTime(utc); got != "2026-11-24 02:30:00" {
		t.Fatalf("card.FormatTime = %s", got)
	}
}

func TestNormalizeIDType(t *testing.T) {
	for in, want := range map[string]string{"0": "01", "1": "01", "01": "01", "9": "09", "10": "10", "": "", " 11 ": "11"} {
		if got := NormalizeIDType(in); got != want {
			t.Errorf("NormalizeIDType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestID(t *testing.T) {
	a, b := card.NewRequestID(), card.NewRequestID()
	if len(a) != 32 || a == b || strings.ToUpper(a) != a {
		t.Fatalf("requestIds %q %q", a, b)
	}
}
