package verify

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"scanagent/internal/card"
)

// stubGW is a gateway on a fixed address that can go down and come back.
type stubGW struct {
	t    *testing.T
	addr string
	srv  *http.Server

	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request, body map[string]any)
	hits   int
	ids    []string // requestIds of /v1/report calls
}

func newStubGW(t *testing.T) *stubGW {
	g := &stubGW{t: t, answer: func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		w.Write([]byte(`{"result":{"name":"张三","idNumber":"11010519491231002X"}}`))
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.serve(ln)
	t.Cleanup(g.down)
	return g
}

func (g *stubGW) url() string { return "http://" + g.addr }

func (g *stubGW) serve(ln net.Listener) {
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		g.mu.Lock()
		g.hits++
		if id, ok := body["requestId"].(string); ok {
			g.ids = append(g.ids, id)
		}
		answer := g.answer
		g.mu.Unlock()
		answer(w, r, body)
	})}
	go g.srv.Serve(ln)
}

func (g *stubGW) down() { g.srv.Close() }

func (g *stubGW) up() {
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		g.t.Fatalf("relisten %s: %v", g.addr, err)
	}
	g.serve(ln)
}

func (g *stubGW) setAnswer(f func(w http.ResponseWriter, r *http.Request, body map[string]any)) {
	g.mu.Lock()
	g.answer = f
	g.mu.Unlock()
}

func (g *stubGW) requestIDs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.ids...)
}

func (g *stubGW) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits
}

func failoverClient(c *clock, urls ...string) *Gateway {
	return NewGateway(GatewayOptions{URLs: urls, Token: "t", HTTP: &http.Client{Timeout: time.Second},
		BreakerFailures: 1, BreakerCooldown: 30 * time.Second, Now: c.Now})
}

// The terminal moves to the second gateway while the first is down and
// returns to the first once its breaker's trial succeeds.
func TestGatewayFailoverAndReturn(t *testing.T) {
	c := newClock()
	gw1, gw2 := newStubGW(t), newStubGW(t)
	cl := failoverClient(c, gw1.url(), gw2.url())
	ctx := context.Background()
	static := card.Request{Kind: card.KindEHCStatic, Text: "A:1"}
	verify := func() {
		t.Helper()
		if _, err := cl.Verify(ctx, static); err != nil {
			t.Fatal(err)
		}
	}
	verify()
	if gw1.count() != 1 || gw2.count() != 0 {
		t.Fatalf("hits %d/%d, want the preferred gateway", gw1.count(), gw2.count())
	}
	gw1.down()
	verify()
	verify()
	if gw2.count() != 2 {
		t.Fatalf("gw2 hits = %d, want 2 while gw1 is down", gw2.count())
	}
	if st := cl.Status(); len(st.Gateways) != 2 || !st.Gateways[0].BreakerOpen || st.BreakerOpen {
		t.Fatalf("status = %+v", st)
	}
	gw1.up()
	verify() // gw1's breaker is still open
	if gw1.count() != 1 {
		t.Fatal("gw1 called while its breaker was open")
	}
	c.Add(31 * time.Second)
	verify() // the trial
	verify()
	if gw1.count() != 3 || gw2.count() != 3 {
		t.Fatalf("hits %d/%d after gw1 recovered, want 3/3", gw1.count(), gw2.count())
	}
}

// A report whose attempt on the first gateway has an unknown outcome is
// repeated with the same requestId on the next; its 10054 means the first
// attempt was processed: delivered.
func TestGatewayFailoverKeepsRequestID(t *testing.T) {
	c := newClock()
	gw1, gw2 := newStubGW(t), newStubGW(t)
	gw1.setAnswer(func(w http.ResponseWriter, r *http.Request, _ map[string]any) { w.WriteHeader(http.StatusBadGateway) })
	gw2.setAnswer(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		w.Write([]byte(`{"error":{"api":"reportHISData","class":"duplicate","code":10054,"message":"重复请求"}}`))
	})
	cl := failoverClient(c, gw1.url(), gw2.url())
	if err := cl.ReportHISData(context.Background(), card.Report{}, "RID-1"); err != nil {
		t.Fatalf("10054 after an unknown outcome = %v, want delivered", err)
	}
	if ids1, ids2 := gw1.requestIDs(), gw2.requestIDs(); len(ids1) != 1 || len(ids2) != 1 || ids1[0] != "RID-1" || ids2[0] != "RID-1" {
		t.Fatalf("requestIds %v / %v", ids1, ids2)
	}
	// A refused token on the repeat says nothing of the first attempt:
	// the outcome stays unknown (the outbox keeps the requestId).
	c.Add(31 * time.Second)
	gw2.setAnswer(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		w.Write([]byte(`{"error":{"api":"reportHISData","class":"token_expired","code":21004,"message":"非法appToken"}}`))
	})
	err := cl.ReportHISData(context.Background(), card.Report{}, "RID-2")
	if e := wantClass(t, err, card.Retryable, 21004); !e.Unknown {
		t.Fatalf("err = %+v, want an unknown outcome", e)
	}
	// A first attempt that surely did not arrive leaves the platform's
	// answer as it is.
	c.Add(31 * time.Second)
	gw1.down()
	cl.o.HTTP.CloseIdleConnections() // a pooled connection to gw1 would make the attempt's outcome unknown
	err = cl.ReportHISData(context.Background(), card.Report{}, "RID-3")
	if e := wantClass(t, err, card.TokenExpired, 21004); e.Unknown {
		t.Fatalf("err = %+v", e)
	}
}

// A dynamic code moves on only when the gateway surely did not process
// it: a follower's marked 503, not a bare one.
func TestGatewayFailoverDynamicCode(t *testing.T) {
	c := newClock()
	gw1, gw2 := newStubGW(t), newStubGW(t)
	dynamic := card.Request{Kind: card.KindEHCDynamic, Text: "A:0:B::C"}
	gw1.setAnswer(func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		w.Header().Set(UnservedHeader, "follower")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	cl := failoverClient(c, gw1.url(), gw2.url())
	if _, err := cl.Verify(context.Background(), dynamic); err != nil || gw2.count() != 1 {
		t.Fatalf("after a follower's 503: %v, gw2 hits %d", err, gw2.count())
	}
	c.Add(31 * time.Second)
	gw1.setAnswer(func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, err := cl.Verify(context.Background(), dynamic)
	if e := wantClass(t, err, card.Retryable, 0); !e.Unknown || gw2.count() != 1 {
		t.Fatalf("a dynamic code after a bare 503 = %+v, gw2 hits %d; it may have been consumed", e, gw2.count())
	}
	// Every gateway down: the error of the first.
	c.Add(31 * time.Second)
	gw1.down()
	gw2.down()
	_, err = cl.Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: "A:1"})
	var ce *card.Error
	if !errors.As(err, &ce) || !ce.Unavailable {
		t.Fatalf("all down: %v", err)
	}
}
