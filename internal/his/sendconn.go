package his

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// The socket limits of a direct WebSocket client (see hub).
const (
	// tryWrite is how long a write may wait for a client's socket before
	// what the socket did not take goes to the client's backlog: the time
	// a client whose socket is full can hold up the others, once (its
	// hub.catchUp then writes its events).
	tryWrite = time.Millisecond
	// drainTimeout is how long a backlog may wait for the socket to take
	// anything before the client is disconnected.
	drainTimeout = 5 * time.Second
	// maxBacklog bounds what may be added to a backlog while it drains
	// (control frames: the hub holds its events back meanwhile) before
	// the client is disconnected.
	maxBacklog = 64 << 10
)

var errSlowClient = errors.New("client too slow: backlog full")

// sendConn is the connection under a direct WebSocket client: a plain TCP
// (or Unix) connection. Its Write never blocks for more than tryWrite:
// what the socket has not taken by then is kept, in order, in a backlog
// that a goroutine started for the purpose writes out, and writes that come
// meanwhile queue behind it. The deadline is a timer of the runtime's
// poller, set in place: no allocation, no goroutine, unlike a context per
// write. A backlog that grows over maxBacklog, or that the socket takes
// nothing of for drainTimeout, closes the connection; the WebSocket's
// reader then fails and its handler unsubscribes it.
type sendConn struct {
	net.Conn
	// onSlow is called, once, if the connection is closed for being slow.
	onSlow func()

	mu      sync.Mutex
	backlog []byte
	added   int           // bytes added to the backlog while draining
	drained chan struct{} // closed when the backlog is written out; nil if none
	err     error
}

func (c *sendConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.drained != nil {
		if c.added += len(p); c.added > maxBacklog {
			c.failLocked(errSlowClient, true)
			return 0, c.err
		}
		c.backlog = append(c.backlog, p...)
		return len(p), nil
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(tryWrite))
	n, err := c.Conn.Write(p)
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.failLocked(err, false)
		return n, err
	}
	c.backlog = append(c.backlog[:0], p[n:]...)
	c.added = 0
	c.drained = make(chan struct{})
	go c.drain()
	return len(p), nil
}

// drain writes the backlog out, waiting for the socket.
func (c *sendConn) drain() {
	var spare []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.backlog) > 0 && c.err == nil {
		buf := c.backlog
		c.backlog = spare[:0]
		c.mu.Unlock()
		_ = c.Conn.SetWriteDeadline(time.Now().Add(drainTimeout))
		_, err := c.Conn.Write(buf)
		c.mu.Lock()
		if err != nil {
			c.failLocked(err, errors.Is(err, os.ErrDeadlineExceeded))
		}
		spare = buf
	}
	c.backlog = nil
	close(c.drained)
	c.drained = nil
}

// failLocked makes err the connection's error and closes it.
func (c *sendConn) failLocked(err error, slow bool) {
	if c.err != nil {
		return
	}
	c.err = err
	_ = c.Conn.Close()
	if slow && c.onSlow != nil {
		go c.onSlow()
	}
}

// backlogged reports whether the connection holds bytes its socket has not
// taken yet.
func (c *sendConn) backlogged() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drained != nil
}

// wait waits until the backlog is written out, and returns the
// connection's error.
func (c *sendConn) wait() error {
	c.mu.Lock()
	drained := c.drained
	c.mu.Unlock()
	if drained != nil {
		<-drained
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// hijackWriter hands the WebSocket library the client's connection wrapped
// in a sendConn when it is a plain TCP or Unix connection; not a TLS one,
// which cannot resume a write cut short by a deadline.
type hijackWriter struct {
	http.ResponseWriter
	onSlow func()
	conn   *sendConn // set by Hijack
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rwc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return rwc, brw, err
	}
	switch rwc.(type) {
	case *net.TCPConn, *net.UnixConn:
		// The server has flushed brw.Writer, which writes to rwc.
		w.conn = &sendConn{Conn: rwc, onSlow: w.onSlow}
		brw.Writer.Reset(w.conn)
		return w.conn, brw, nil
	}
	return rwc, brw, nil
}
