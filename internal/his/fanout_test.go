package his

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// TestFanoutLatency measures the local API's fan-out: from an outcome
// handed to Deliver to each of 10 WebSocket clients receiving it, over 1000
// scans, next to a bare loopback WebSocket broadcast (a server writing the
// same bytes to the same 10 clients, no hub) in the same run: three rounds
// of each, interleaved, medians reported (p99 on 2 cores is mostly
// scheduling noise). Run by scripts/bench.sh (SCANAGENT_BENCH=1).
func TestFanoutLatency(t *testing.T) {
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
	const clients, scans = 10, 1000
	agent := func() (time.Duration, time.Duration) {
		api := NewAPI(APIOptions{Log: zerolog.Nop()})
		srv := httptest.NewServer(api.Handler())
		defer srv.Close()
		return measure(t, srv.URL+"/v1/ws", clients, scans, func(i int, sent time.Time) {
			api.Deliver(context.Background(), card.Visit{Type: "scan", ID: fmt.Sprint(i), Time: sent, Identity: &card.Identity{Name: "龙小英", IDNumber: "432901198810228888"}})
		}, func() int { return api.Clients() })
	}
	// Baseline: a bare broadcast server.
	bare := func() (time.Duration, time.Duration) {
		var mu sync.Mutex
		var conns []*websocket.Conn
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			<-r.Context().Done()
		}))
		defer srv.Close()
		return measure(t, strings.Replace(srv.URL, "http", "ws", 1), clients, scans, func(i int, sent time.Time) {
			msg := []byte(fmt.Sprintf(`{"type":"scan","id":"%d","time":%q,"identity":{"name":"龙小英","idNumber":"432901198810228888"}}`, i, sent.Format(time.RFC3339Nano)))
			mu.Lock()
			cs := append([]*websocket.Conn(nil), conns...)
			mu.Unlock()
			for _, c := range cs {
				c.Write(context.Background(), websocket.MessageText, msg)
			}
		}, func() int { mu.Lock(); defer mu.Unlock(); return len(conns) })
	}
	var a50, a99, b50, b99 []time.Duration
	for round := 0; round < 3; round++ {
		p50, p99 := agent()
		a50, a99 = append(a50, p50), append(a99, p99)
		p50, p99 = bare()
		b50, b99 = append(b50, p50), append(b99, p99)
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	fmt.Printf("fan-out to %d WebSocket clients, %d scans, median of 3 rounds: agent p50=%v p99=%v; bare loopback broadcast p50=%v p99=%v (p50 ratio %.2fx, p99 ratio %.2fx)\n",
		clients, scans, med(a50), med(a99), med(b50), med(b99), float64(med(a50))/float64(med(b50)), float64(med(a99))/float64(med(b99)))
}

func measure(t *testing.T, url string, clients, scans int, send func(i int, sent time.Time), connected func() int) (p50, p99 time.Duration) {
	url = strings.Replace(url, "http://", "ws://", 1)
	sent := make([]time.Time, scans)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for c := 0; c < clients; c++ {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < scans; got++ {
				_, msg, err := ws.Read(ctx)
				now := time.Now()
				if err != nil {
					t.Error(err)
					return
				}
				var i int
				fmt.Sscanf(strings.SplitN(string(msg), `"id":"`, 2)[1], "%d", &i)
				mu.Lock()
				lat = append(lat, now.Sub(sent[i]))
				mu.Unlock()
			}
		}()
	}
	for connected() < clients {
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < scans; i++ {
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		send(i, sent[i])
		time.Sleep(200 * time.Microsecond) // scans arrive one by one, not in a burst
	}
	wg.Wait()
	slices.Sort(lat)
	return lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond)
}
