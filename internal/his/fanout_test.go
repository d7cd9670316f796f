package his

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// fanoutVisit is the event of scan i, the same for the agent and the bare
// baseline.
func fanoutVisit(i int, sent time.Time) card.Visit {
	return card.Visit{Type: "scan", ID: fmt.Sprint(i), Time: sent, Source: "counter-1", Kind: "ehc_static", Verified: true,
		Identity: &card.Identity{Name: "龙小英", IDNumber: "432901198810228888"}, Latency: 0.4}
}

// TestFanoutLatency measures the local API's fan-out: from an outcome
// handed to Deliver to each of 10 WebSocket clients having read it, next
// to a bare loopback WebSocket broadcast measured in the same run. The bare
// server uses the same library (github.com/coder/websocket, default
// options), its own 10 clients, the same bytes (json.Marshal of the same
// card.Visit, encoded once per scan) and writes them to its clients one
// after the other from the sending goroutine: no hub, no queue, no
// timeouts.
//
// Two patterns, each a line:
//   - mode=isolated: scans one at a time, as at a counter. Both servers
//     and their clients are up at once and scans go to them alternately,
//     the next 200 µs after every client has read the previous one, so
//     that neither side's work delays the other's while both see the same
//     machine from moment to moment (on a shared 2-core machine the load
//     of the moment moves p99 more than anything measured here).
//   - mode=paced: a scan every 200 µs whether or not the previous one has
//     arrived (5000 scans/s, a stress test: fan-outs overlap), to one
//     server at a time, the agent and the bare one in turn.
//
// Each round sends 1000 scans (after 50 not counted) and takes p50 and p99
// over the 10 000 deliveries; the medians of 3 rounds are printed, with
// the ratios and the range of p99 over the rounds. Run by scripts/bench.sh
// (SCANAGENT_BENCH=1).
func TestFanoutLatency(t *testing.T) {
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
	const clients, scans, rounds = 10, 1000, 3
	for _, mode := range []string{"isolated", "paced"} {
		var a50, a99, b50, b99 []time.Duration
		for round := range rounds {
			api := NewAPI(APIOptions{Log: zerolog.Nop()})
			asrv := httptest.NewServer(api.Handler())
			bare, bsrv := newBareBroadcast()
			agent := fanoutTarget{url: asrv.URL + "/v1/ws", connected: api.Clients,
				send: func(v card.Visit) { api.Deliver(context.Background(), v) }}
			var ap, bp [2]time.Duration
			switch {
			case mode == "isolated":
				p := measureFanout(t, clients, scans, true, agent, bare)
				ap, bp = p[0], p[1]
			case round%2 == 0:
				ap = measureFanout(t, clients, scans, false, agent)[0]
				bp = measureFanout(t, clients, scans, false, bare)[0]
			default:
				bp = measureFanout(t, clients, scans, false, bare)[0]
				ap = measureFanout(t, clients, scans, false, agent)[0]
			}
			asrv.Close()
			bsrv.Close()
			a50, a99 = append(a50, ap[0]), append(a99, ap[1])
			b50, b99 = append(b50, bp[0]), append(b99, bp[1])
			t.Logf("%s round %d: agent p50=%v p99=%v, bare p50=%v p99=%v", mode, round+1, ap[0], ap[1], bp[0], bp[1])
		}
		r := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
		fmt.Printf("fan-out clients=%d scans=%d rounds=%d mode=%s p50=%dµs p99=%dµs bare_p50=%dµs bare_p99=%dµs ratio_p50=%.2f ratio_p99=%.2f p99_range=%d..%dµs bare_p99_range=%d..%dµs\n",
			clients, scans, rounds, mode, us(median(a50)), us(median(a99)), us(median(b50)), us(median(b99)),
			r(median(a50), median(b50)), r(median(a99), median(b99)),
			us(slices.Min(a99)), us(slices.Max(a99)), us(slices.Min(b99)), us(slices.Max(b99)))
	}
}

// newBareBroadcast is the baseline: a server that keeps the WebSockets it
// accepts and writes each event to them in turn.
func newBareBroadcast() (fanoutTarget, *httptest.Server) {
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
		c.CloseRead(context.Background())
		<-r.Context().Done()
	}))
	return fanoutTarget{url: srv.URL,
		connected: func() int { mu.Lock(); defer mu.Unlock(); return len(conns) },
		send: func(v card.Visit) {
			msg, _ := json.Marshal(v)
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Write(context.Background(), websocket.MessageText, msg)
			}
		}}, srv
}

type fanoutTarget struct {
	url       string
	send      func(card.Visit)
	connected func() int
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func us(d time.Duration) int64 { return d.Microseconds() }

// measureFanout connects clients WebSocket clients to each target and sends
// scans events to each, alternately, 200 µs apart; isolated, each 200 µs
// after the previous one reached all its clients. It returns each target's
// p50 and p99 of the time from send to a client having read the event.
func measureFanout(t *testing.T, clients, scans int, isolated bool, targets ...fanoutTarget) (pct [][2]time.Duration) {
	const warmup = 50
	n := len(targets)
	total := n * (warmup + scans)
	base := time.Now()
	sent := make([]atomic.Int64, total) // ns since base
	got := make([]atomic.Int32, total)  // clients that read it
	done := make(chan struct{}, total)  // all clients read an event
	lat := make([][]time.Duration, n*clients)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k, target := range targets {
		url := strings.Replace(target.url, "http://", "ws://", 1)
		for c := range clients {
			ws, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			l := make([]time.Duration, 0, scans)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { lat[k*clients+c] = l }()
				for range warmup + scans {
					_, msg, err := ws.Read(ctx)
					now := time.Since(base)
					if err != nil {
						t.Error(err)
						return
					}
					i := eventIndex(msg)
					if i < 0 || i >= total || i%n != k {
						t.Errorf("unexpected event %s", msg)
						return
					}
					if i >= n*warmup {
						l = append(l, now-time.Duration(sent[i].Load()))
					}
					if got[i].Add(1) == int32(clients) {
						done <- struct{}{}
					}
				}
			}()
		}
		for target.connected() < clients {
			time.Sleep(time.Millisecond)
		}
	}
	for i := range total {
		now := time.Now()
		sent[i].Store(int64(now.Sub(base)))
		targets[i%n].send(fanoutVisit(i, now))
		if isolated {
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatalf("event %d not read by every client", i)
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	wg.Wait()
	for k := range targets {
		all := slices.Concat(lat[k*clients : (k+1)*clients]...)
		if len(all) != clients*scans {
			t.Fatalf("target %d: %d deliveries, want %d", k, len(all), clients*scans)
		}
		slices.Sort(all)
		pct = append(pct, [2]time.Duration{all[len(all)/2], all[len(all)*99/100]})
	}
	return pct
}

// eventIndex reads the scan number from an event's "id".
func eventIndex(msg []byte) int {
	_, rest, ok := bytes.Cut(msg, []byte(`"id":"`))
	if !ok {
		return -1
	}
	n := 0
	for _, b := range rest {
		if b == '"' {
			return n
		}
		if b < '0' || b > '9' {
			return -1
		}
		n = n*10 + int(b-'0')
	}
	return -1
}

// TestFanoutMemory measures what 1000 connected WebSocket clients cost the
// agent: the API runs in this process with his.api.max_stream_clients
// raised to 1000 (the default is 64), the clients in a child process (this
// test binary again, TestFanoutMemoryClients), so that the growth of this
// process's resident set (VmRSS in /proc/self/status, read before the
// clients connect and after 100 events have reached all of them) is the
// server side's alone. Linux only. Run by scripts/bench.sh
// (SCANAGENT_BENCH=1).
func TestFanoutMemory(t *testing.T) {
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	const clients, events = 1000, 100
	api := NewAPI(APIOptions{Log: zerolog.Nop(), MaxStreamClients: clients})
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	for i := range 10 { // warm up the server's pools before the baseline
		api.Deliver(context.Background(), fanoutVisit(events+i, time.Now()))
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss0, ms0, g0 := vmRSS(t), memStats(), runtime.NumGoroutine()

	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutMemoryClients$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("SCANAGENT_FANOUT_CHILD=%s %d %d", srv.URL+"/v1/ws", clients, events))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		for lines.Scan() {
			if lines.Text()+"\n" == want {
				return
			}
		}
		t.Fatalf("child: no %q line", want)
	}
	expect("connected\n")
	for api.Clients() < clients {
		time.Sleep(10 * time.Millisecond)
	}
	rss1 := vmRSS(t)
	for i := range events {
		api.Deliver(context.Background(), fanoutVisit(i, time.Now()))
		expect(fmt.Sprintf("read %d\n", i))
	}
	rss2, ms2, g2 := vmRSS(t), memStats(), runtime.NumGoroutine()
	if n := api.Clients(); n != clients {
		t.Fatalf("%d clients left, want %d", n, clients)
	}
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("fan-out memory clients=%d rss=%.1fMB rss_connected=%.1fMB rss_total=%.1fMB per_client=%.1fKB heap=%.1fMB stacks=%.1fMB goroutines=%d\n",
		clients, mb(rss2-rss0), mb(rss1-rss0), mb(rss2), float64(rss2-rss0)/clients/1024,
		mb(int64(ms2.HeapInuse)-int64(ms0.HeapInuse)), mb(int64(ms2.StackInuse)-int64(ms0.StackInuse)), g2-g0)
}

// TestFanoutMemoryClients is TestFanoutMemory's child: it connects the
// clients, says "connected", says "read i" when all of them have read event
// i, and waits for its standard input to close.
func TestFanoutMemoryClients(t *testing.T) {
	arg := os.Getenv("SCANAGENT_FANOUT_CHILD")
	if arg == "" {
		t.Skip("run by TestFanoutMemory")
	}
	var url string
	var clients, events int
	if _, err := fmt.Sscan(arg, &url, &clients, &events); err != nil {
		t.Fatal(err)
	}
	url = strings.Replace(url, "http://", "ws://", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := make([]atomic.Int32, events)
	for range clients {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		go func() {
			for range events {
				_, msg, err := ws.Read(ctx)
				if err != nil {
					fmt.Println("failed:", err)
					return
				}
				if i := eventIndex(msg); i >= 0 && i < events && got[i].Add(1) == int32(clients) {
					fmt.Printf("read %d\n", i)
				}
			}
		}()
	}
	fmt.Println("connected")
	io.Copy(io.Discard, os.Stdin)
}

func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(v, &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func memStats() runtime.MemStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
