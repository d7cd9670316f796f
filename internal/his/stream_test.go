package his

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// A write the socket does not take goes to the backlog, the caller goes
// on, and the bytes arrive whole and in order once the peer reads.
func TestSendConnBacklog(t *testing.T) {
	server, client := net.Pipe() // a pipe takes nothing until the peer reads
	defer client.Close()
	c := &sendConn{Conn: server}
	defer c.Close()
	var want bytes.Buffer
	for i := range 100 {
		p := fmt.Appendf(nil, "event %d;", i)
		want.Write(p)
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
	}
	if !c.backlogged() {
		t.Fatal("nothing in the backlog")
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %q\nwant %q", got, want.Bytes())
	}
}

// A client whose backlog outgrows maxBacklog is closed, once, as slow.
func TestSendConnBacklogFull(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	slow := make(chan struct{}, 2)
	c := &sendConn{Conn: server, onSlow: func() { slow <- struct{}{} }}
	p := make([]byte, 1024)
	var err error
	for i := 0; i <= maxBacklog/len(p)+1 && err == nil; i++ {
		_, err = c.Write(p)
	}
	if !errors.Is(err, errSlowClient) {
		t.Fatalf("backlog over %d bytes: %v", maxBacklog, err)
	}
	<-slow
	if _, err := c.Write(p); !errors.Is(err, errSlowClient) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := io.Copy(io.Discard, client); err != nil {
		t.Fatalf("peer: %v", err) // EOF: the connection was closed
	}
	select {
	case <-slow:
		t.Fatal("onSlow called twice")
	default:
	}
}

// smallBuffers dials connections with a small receive buffer, for clients
// whose socket is to fill soon.
var smallBuffers = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		c.(*net.TCPConn).SetReadBuffer(32 << 10)
	}
	return c, err
}}}

func dialWS(t *testing.T, ctx context.Context, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/v1/ws", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// readIDs reads n events and returns their ids.
func readIDs(ctx context.Context, ws *websocket.Conn, n int) ([]string, error) {
	var ids []string
	for range n {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return ids, err
		}
		_, rest, _ := bytes.Cut(msg, []byte(`"id":"`))
		id, _, _ := bytes.Cut(rest, []byte(`"`))
		ids = append(ids, string(id))
	}
	return ids, nil
}

func waitClients(t *testing.T, a *API, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); a.Clients() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients, want %d", a.Clients(), n)
		}
	}
}

// A WebSocket client that stops reading is disconnected once its socket
// and its backlog are full; the others get every event, in order, and
// Deliver never waits for it.
func TestWebSocketStalledClient(t *testing.T) {
	a := NewAPI(APIOptions{Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fast := dialWS(t, ctx, srv.URL, nil)
	fast.SetReadLimit(-1)
	stalled := dialWS(t, ctx, srv.URL, &websocket.DialOptions{HTTPClient: smallBuffers}) // never reads
	waitClients(t, a, 2)

	big := strings.Repeat("x", 32<<10)
	const most = 1000 // 32 MB: far more than the stalled client's sockets hold
	var read, sent atomic.Int32
	ids := make(chan []string, 1)
	go func() {
		var got []string
		for {
			id, err := readIDs(ctx, fast, 1)
			if err != nil {
				t.Error(err)
				break
			}
			if id[0] == "end" {
				break
			}
			got = append(got, id...)
			read.Add(1)
		}
		ids <- got
	}()
	// Publish until the stalled client is dropped, and a few more.
	for i, extra := 0, 10; i < most && extra > 0; i++ {
		// Keep the fast client within subQueue/2 events: this is not
		// about how fast it reads.
		for int(read.Load()) < i-subQueue/2 && ctx.Err() == nil {
			time.Sleep(100 * time.Microsecond)
		}
		a.Deliver(ctx, card.Visit{Type: "scan", ID: fmt.Sprint(i), Error: &card.VisitError{Code: "x", Message: big}})
		sent.Add(1)
		if a.Clients() == 1 {
			extra--
		}
	}
	a.Deliver(ctx, card.Visit{Type: "scan", ID: "end"})
	got := <-ids
	if len(got) != int(sent.Load()) {
		t.Fatalf("fast client read %d events, want %d", len(got), sent.Load())
	}
	for i, id := range got {
		if id != fmt.Sprint(i) {
			t.Fatalf("event %d: got id %s", i, id)
		}
	}
	waitClients(t, a, 1)
	// The stalled client finds its connection closed once it reads.
	stalled.SetReadLimit(-1)
	for {
		if _, _, err := stalled.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("stalled client still connected")
			}
			break
		}
	}
}

// Events published while a WebSocket client is being accepted reach it
// after the upgrade, in order, with those that follow.
func TestWebSocketOrderWhileConnecting(t *testing.T) {
	a := NewAPI(APIOptions{Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a.Deliver(ctx, card.Visit{Type: "scan", ID: fmt.Sprint(i)})
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var clients []*websocket.Conn
	for range 20 {
		clients = append(clients, dialWS(t, ctx, srv.URL, nil))
	}
	for _, ws := range clients {
		ids, err := readIDs(ctx, ws, 50)
		if err != nil {
			t.Fatal(err)
		}
		var first int
		fmt.Sscan(ids[0], &first)
		for k, id := range ids {
			if id != fmt.Sprint(first+k) {
				t.Fatalf("ids %v: not consecutive", ids)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// Over TLS the hub cannot write without waiting: each client's handler
// writes its events.
func TestWebSocketTLS(t *testing.T) {
	a := NewAPI(APIOptions{Log: zerolog.Nop()})
	srv := httptest.NewTLSServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dialWS(t, ctx, srv.URL, &websocket.DialOptions{HTTPClient: srv.Client()})
	waitClients(t, a, 1)
	for i := range 3 {
		a.Deliver(ctx, card.Visit{Type: "scan", ID: fmt.Sprint(i)})
	}
	ids, err := readIDs(ctx, ws, 3)
	if err != nil || strings.Join(ids, ",") != "0,1,2" {
		t.Fatalf("%v %v", ids, err)
	}
}

// A client that sends a data message is closed with a policy violation,
// as CloseRead does.
func TestWebSocketClientMessageRefused(t *testing.T) {
	a := NewAPI(APIOptions{Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dialWS(t, ctx, srv.URL, nil)
	waitClients(t, a, 1)
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, _, err := ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("read: %v", err)
	}
	waitClients(t, a, 0)
}

var _ http.Hijacker = (*hijackWriter)(nil)

// A client whose socket fills falls behind: its events wait in its channel
// and reach it in order once it reads again, after which the publisher
// writes to it directly again.
func TestWebSocketCatchUp(t *testing.T) {
	a := NewAPI(APIOptions{Log: zerolog.Nop()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dialWS(t, ctx, srv.URL, &websocket.DialOptions{HTTPClient: smallBuffers})
	ws.SetReadLimit(-1)
	waitClients(t, a, 1)
	var s *sub
	for s == nil && ctx.Err() == nil { // attached after the upgrade
		a.hub.mu.Lock()
		if len(a.hub.direct) > 0 {
			s = a.hub.direct[0]
		}
		a.hub.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	s.conn.Conn.(*net.TCPConn).SetWriteBuffer(32 << 10)
	behind := func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.behind }

	big := strings.Repeat("x", 64<<10)
	const events = subQueue / 2 // 2 MiB: far more than both sockets hold
	for i := range events {
		a.Deliver(ctx, card.Visit{Type: "scan", ID: fmt.Sprint(i), Error: &card.VisitError{Code: "x", Message: big}})
	}
	if !behind() {
		t.Fatal("client not behind with its socket full")
	}
	ids, err := readIDs(ctx, ws, events)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if id != fmt.Sprint(i) {
			t.Fatalf("event %d: got id %s", i, id)
		}
	}
	for behind() {
		if ctx.Err() != nil {
			t.Fatal("client still behind")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 3 {
		a.Deliver(ctx, card.Visit{Type: "scan", ID: fmt.Sprint(events + i)})
	}
	if ids, err := readIDs(ctx, ws, 3); err != nil || strings.Join(ids, ",") != fmt.Sprintf("%d,%d,%d", events, events+1, events+2) {
		t.Fatalf("after catching up: %v %v", ids, err)
	}
	if a.Clients() != 1 {
		t.Fatal("client dropped")
	}
}
