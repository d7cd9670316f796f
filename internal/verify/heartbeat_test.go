package verify

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"scanagent/internal/card"
)

// heartbeatSeen records the heartbeats a stub gateway received.
type heartbeatSeen struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (h *heartbeatSeen) answer(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if r.URL.Path == "/v1/verify" {
		w.Write([]byte(`{"result":{"name":"张三"}}`))
		return
	}
	if r.URL.Path != "/v1/heartbeat" || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer t" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h.mu.Lock()
	h.bodies = append(h.bodies, body)
	h.mu.Unlock()
	w.Write([]byte(`{"result":{}}`))
}

func (h *heartbeatSeen) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// A heartbeat goes where the scans go: to the first gateway that can be
// reached, with the terminal's token, moving on past a gateway that is
// down (whose breaker it opens, like a call) and one whose breaker is
// open.
func TestHeartbeatFailsOver(t *testing.T) {
	c := newClock()
	gw1, gw2 := newStubGW(t), newStubGW(t)
	var seen1, seen2 heartbeatSeen
	gw1.setAnswer(seen1.answer)
	gw2.setAnswer(seen2.answer)
	cl := failoverClient(c, gw1.url(), gw2.url())
	ctx := context.Background()
	hb := map[string]any{"health": "ok", "version": "1.4.0"}
	if err := cl.Heartbeat(ctx, hb); err != nil || seen1.count() != 1 || seen2.count() != 0 {
		t.Fatalf("heartbeat: %v, %d/%d", err, seen1.count(), seen2.count())
	}
	if seen1.bodies[0]["version"] != "1.4.0" {
		t.Fatalf("body %v", seen1.bodies[0])
	}
	gw1.down()
	cl.o.HTTP.CloseIdleConnections()
	if err := cl.Heartbeat(ctx, hb); err != nil || seen2.count() != 1 {
		t.Fatalf("with gw1 down: %v, gw2 got %d", err, seen2.count())
	}
	st := cl.Status()
	if !st.Gateways[0].BreakerOpen || st.Gateways[0].LastError[APIHeartbeat] == "" {
		t.Fatalf("gw1's breaker after a heartbeat could not reach it: %+v", st.Gateways[0])
	}
	// A scan now goes straight to gw2: the heartbeat found gw1 down.
	if _, err := cl.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "A:1"}); err != nil || gw2.count() != 2 {
		t.Fatalf("scan after the heartbeat: %v, gw2 hits %d", err, gw2.count())
	}
	gw1.up()
	if err := cl.Heartbeat(ctx, hb); err != nil || seen1.count() != 1 || seen2.count() != 2 {
		t.Fatalf("gw1's breaker open: %v, %d/%d", err, seen1.count(), seen2.count())
	}
}

// A heartbeat a gateway takes says nothing of the platform behind it: it
// neither resets the breaker's count of platform faults nor closes it;
// a gateway's refusal (an older gateway: 404) changes nothing, and is no
// configuration error on the status.
func TestHeartbeatIsPassive(t *testing.T) {
	c := newClock()
	gw := newStubGW(t)
	var seen heartbeatSeen
	gw.setAnswer(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if r.URL.Path == "/v1/verify" {
			w.Write([]byte(`{"error":{"api":"getHealthCardByQRCode","class":"retryable","message":"platform down","unavailable":true}}`))
			return
		}
		seen.answer(w, r, body)
	})
	cl := NewGateway(GatewayOptions{URLs: []string{gw.url()}, Token: "t", HTTP: &http.Client{Timeout: time.Second},
		BreakerFailures: 3, BreakerCooldown: 30 * time.Second, Now: c.Now})
	ctx := context.Background()
	for range 2 {
		cl.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "A:1"})
	}
	if err := cl.Heartbeat(ctx, map[string]any{"health": "ok"}); err != nil {
		t.Fatal(err)
	}
	if st := cl.Status(); st.Failures != 2 {
		t.Fatalf("failures after a heartbeat = %d, want the 2 platform faults kept", st.Failures)
	}
	cl.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "A:1"})
	c.Add(31 * time.Second)
	if err := cl.Heartbeat(ctx, map[string]any{"health": "ok"}); err != nil {
		t.Fatal(err)
	}
	if st := cl.Status(); !st.BreakerOpen || st.Failures != 3 {
		t.Fatalf("a heartbeat closed the platform breaker: %+v", st.GateState)
	}
	old := NewGateway(GatewayOptions{URLs: []string{gw.url() + "/old"}, Token: "t", HTTP: &http.Client{Timeout: time.Second},
		BreakerFailures: 1, BreakerCooldown: 30 * time.Second, Now: c.Now})
	err := old.Heartbeat(ctx, map[string]any{"health": "ok"})
	if e := wantClass(t, err, card.Fatal, 0); !strings.Contains(e.Msg, "404") {
		t.Fatalf("heartbeat to a gateway without /v1/heartbeat: %v", e)
	}
	if st := old.Status(); st.BreakerOpen || st.Failures != 0 || len(st.LastError) != 0 {
		t.Fatalf("a 404 to a heartbeat changed the breaker: %+v", st.GateState)
	}
}

// A heartbeat does not take a half-open breaker's trial: a scan while a
// heartbeat is on its way to a gateway that is back still tries that
// gateway, and closes its breaker.
func TestHeartbeatLeavesTheTrialToScans(t *testing.T) {
	c := newClock()
	gw1, gw2 := newStubGW(t), newStubGW(t)
	var seen1, seen2 heartbeatSeen
	inHeartbeat, release := make(chan struct{}), make(chan struct{})
	gw1.setAnswer(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if r.URL.Path == "/v1/heartbeat" {
			close(inHeartbeat)
			<-release
		}
		seen1.answer(w, r, body)
	})
	gw2.setAnswer(seen2.answer)
	cl := failoverClient(c, gw1.url(), gw2.url())
	ctx := context.Background()
	gw1.down()
	if _, err := cl.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "A:1"}); err != nil {
		t.Fatal(err)
	}
	if !cl.Status().Gateways[0].BreakerOpen {
		t.Fatal("gw1's breaker should be open")
	}
	gw1.up()
	c.Add(time.Hour) // past the cooldown: half-open
	done := make(chan error, 1)
	go func() { done <- cl.Heartbeat(ctx, map[string]any{"health": "ok"}) }()
	<-inHeartbeat
	hits := gw2.count()
	if _, err := cl.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "A:1"}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if gw2.count() != hits {
		t.Fatal("the scan went to gw2: the heartbeat held gw1's trial")
	}
	if cl.Status().Gateways[0].BreakerOpen {
		t.Fatal("gw1's breaker still open after the scan it served")
	}
}
