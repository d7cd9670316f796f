//go:build linux || darwin

package his

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"scanagent/internal/card"
)

// A /v1/events client that stops reading is cut off once a write has
// waited drainTimeout: its handler ends. It used to wait in Write
// forever, holding a goroutine and the socket, long after the hub had
// dropped it.
func TestStalledSSEClientIsCutOff(t *testing.T) {
	a, _, _ := newAPI(t)
	done := make(chan struct{}) // the stream's handler has ended
	var once sync.Once
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateIdle || s == http.StateClosed {
			once.Do(func() { close(done) })
		}
	}
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Listener.Addr())
	for deadline := time.Now().Add(10 * time.Second); a.Clients() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the SSE client never subscribed")
		}
	}
	big := strings.Repeat("龙", 2000)
	// Paced, so that the handler is stuck writing before the hub, whose
	// queue for the client fills meanwhile, drops it.
	for i := 0; i < 20000 && a.Clients() > 0; i++ {
		a.Deliver(context.Background(), card.Visit{Type: "scan", ID: fmt.Sprint(i), Identity: &card.Identity{Name: big}})
		time.Sleep(time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(drainTimeout + 10*time.Second): // a guard against a hang, not a timing
		t.Fatal("the stream's handler still waits to write to the stalled client")
	}
}

// smallSendBuffers gives accepted connections a small socket send buffer,
// so that a client that does not read blocks the server's writes soon.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}
