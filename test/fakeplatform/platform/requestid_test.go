package platform

import (
	"testing"
	"time"
)

// Every requestId the fake answered, whatever the answer, is answered
// 10054 when it comes again, on any API (guide FAQ 2). A request that was
// never answered (a fault before processing) leaves its id unused.
func TestRequestIDAnsweredOnce(t *testing.T) {
	card := BuiltinCards()[0]
	tests := []struct {
		name      string
		setup     func(c *client)
		first     int // resultCode of the first request; -999 when no answer came
		replayAPI string
		replay    int
	}{
		{"accepted", nil, 0, "reportHISData", 10054},
		{"accepted, replayed on another API", nil, 0, "getHealthCardByQRCode", 10054},
		{"refused: stale token (21004)", func(c *client) { c.token = "stale" }, 21004, "reportHISData", 10054},
		{"refused: expired token (21003)", func(c *client) { c.clock.Add(3 * time.Hour) }, 21003, "reportHISData", 10054},
		{"refused: bad signature (21006)", func(c *client) { c.secret = "wrong" }, 21006, "reportHISData", 10054},
		{"injected rate limit (10034)", func(c *client) {
			c.fake.SetFaults(Faults{ResultCode: 10034, Count: 1})
		}, 10034, "reportHISData", 10054},
		{"processed, answer lost (reset)", func(c *client) {
			c.fake.SetFaults(Faults{Reset: true, AfterProcess: true, Count: 1})
		}, -999, "reportHISData", 10054},
		{"processed, answer lost (502)", func(c *client) {
			c.fake.SetFaults(Faults{Status: 502, AfterProcess: true, Count: 1})
		}, -999, "reportHISData", 10054},
		{"not processed (502 before)", func(c *client) {
			c.fake.SetFaults(Faults{Status: 502, Count: 1})
		}, -999, "reportHISData", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{})
			c.fetchToken()
			good := *c
			if tt.setup != nil {
				tt.setup(c)
			}
			id := newID()
			if code := c.call("reportHISData", id, staticReport()); code != tt.first {
				t.Fatalf("first answer %d, want %d", code, tt.first)
			}
			good.fetchToken() // a live token, the right secret
			req := staticReport()
			if tt.replayAPI == "getHealthCardByQRCode" {
				req = map[string]any{"qrCodeText": card.QRCodeText}
			}
			if code := good.call(tt.replayAPI, id, req); code != tt.replay {
				t.Fatalf("replay of %s answered %d, want %d", id, code, tt.replay)
			}
		})
	}
}
