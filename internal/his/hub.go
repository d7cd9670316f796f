package his

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"scanagent/internal/card"
)

// subQueue is how many events a subscriber may have waiting before it is
// disconnected as too slow.
const subQueue = 64

// hub fans events out to subscribers and remembers recent ones.
//
// Each event is encoded once and the same bytes go to every client.
//
// WebSocket clients on a plain connection (see sendConn) are "direct": the
// goroutine that publishes an event writes it to them one after the other,
// as a bare broadcast would: no goroutine to wake per client or per event,
// no allocation per client, no timer. A publisher that finds another one
// writing queues its event and returns; the writer takes it before it
// stops, so events keep their order and publishers never wait for one
// another. A write waits at most tryWrite for a client's socket: a client
// whose socket is full falls "behind", and until it has caught up its
// events go to its channel, which a goroutine of its own writes out
// (waiting for the socket) and which is there only while it is behind.
//
// SSE and long-poll clients, WebSockets over TLS (which cannot resume a
// write cut short) and WebSockets not yet accepted are woken through their
// channel, each by its own goroutine.
//
// Whatever the kind, a client with subQueue events waiting is disconnected
// rather than stall the scanner or grow without bound.
type hub struct {
	mu sync.Mutex
	// subs are the subscribers woken through their channel.
	subs map[*sub]struct{}
	// direct are the subscribers publishers write to. The slice is
	// replaced, never changed in place: queued deliveries share it.
	direct []*sub
	// closing: closeAll ran (the API is being replaced or stopped).
	closing  atomic.Bool
	queue    []delivery   // events to write to direct subscribers, oldest first
	spare    []delivery   // the previous batch, for reuse
	flushing bool         // a publisher is writing the queue out
	recent   []card.Visit // newest last
	keep     int
}

// message is an event with its JSON, encoded once for every client.
type message struct {
	card.Visit
	data []byte

	sseOnce sync.Once
	sse     []byte
}

// sseFrame is the message as a Server-Sent Event, built once for every SSE
// client.
func (m *message) sseFrame() []byte {
	m.sseOnce.Do(func() {
		b := make([]byte, 0, len(m.ID)+len(m.data)+32)
		b = append(b, "id: "...)
		b = append(b, m.ID...)
		b = append(b, "\nevent: scan\ndata: "...)
		b = append(b, m.data...)
		m.sse = append(b, "\n\n"...)
	})
	return m.sse
}

// delivery is an event to write to some direct subscribers.
type delivery struct {
	m  *message
	to []*sub
}

type sub struct {
	ch     chan *message
	closed chan struct{}
	once   sync.Once

	// For direct subscribers, set by attach.
	ws   *websocket.Conn
	conn *sendConn
	// queued counts the subscriber's events in the hub's queue.
	queued atomic.Int32
	mu     sync.Mutex
	behind bool // its events go to ch, and catchUp writes them (under mu)
}

func (s *sub) close() { s.once.Do(func() { close(s.closed) }) }

func (s *sub) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func newHub(keep int) *hub { return &hub{subs: map[*sub]struct{}{}, keep: keep} }

func (h *hub) subscribe() *sub {
	s, _ := h.trySubscribe(0)
	return s
}

// trySubscribe subscribes unless max (> 0) subscribers are connected.
func (h *hub) trySubscribe(max int) (*sub, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if max > 0 && len(h.subs)+len(h.direct) >= max {
		return nil, false
	}
	s := &sub{ch: make(chan *message, subQueue), closed: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s, true
}

// attach makes s a direct subscriber writing to ws over conn, starting with
// the events waiting in its channel. It reports false if s was dropped.
func (h *hub) attach(s *sub, ws *websocket.Conn, conn *sendConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; !ok {
		return false
	}
	delete(h.subs, s)
	s.ws, s.conn = ws, conn
	h.direct = append(slices.Clip(h.direct), s)
	if len(s.ch) > 0 {
		s.mu.Lock()
		s.behind = true
		s.mu.Unlock()
		go h.catchUp(s)
	}
	return true
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	h.removeLocked(s)
	h.mu.Unlock()
	s.close()
}

func (h *hub) removeLocked(s *sub) {
	if s.ws == nil {
		delete(h.subs, s)
		return
	}
	if i := slices.Index(h.direct, s); i >= 0 {
		h.direct = slices.Delete(slices.Clone(h.direct), i, i+1)
	}
}

// dropLocked disconnects a subscriber that fell subQueue events behind.
func (h *hub) dropLocked(s *sub) {
	h.removeLocked(s)
	s.close()
	if s.ws != nil {
		// Its reader is blocked reading: closing the connection ends it.
		go s.ws.Close(websocket.StatusTryAgainLater, "client too slow")
	}
}

// closeAll disconnects every subscriber, the WebSockets with 1012
// "service restart" so that the HIS reconnects (to the API that replaces
// this one). The HTTP server's shutdown does not: a WebSocket's
// connection is hijacked, and would stay open on a hub that no longer
// gets events.
func (h *hub) closeAll() {
	h.closing.Store(true)
	h.mu.Lock()
	subs := slices.Collect(maps.Keys(h.subs))
	direct := h.direct
	h.subs, h.direct = map[*sub]struct{}{}, nil
	h.mu.Unlock()
	for _, s := range subs {
		s.close()
	}
	for _, s := range direct {
		s.close()
		go s.ws.Close(websocket.StatusServiceRestart, "service restart")
	}
}

// closeReason is why a WebSocket whose subscriber was closed is closed:
// the API stopping (closeAll), or the client falling behind.
func (h *hub) closeReason() (websocket.StatusCode, string) {
	if h.closing.Load() {
		return websocket.StatusServiceRestart, "service restart"
	}
	return websocket.StatusTryAgainLater, "client too slow"
}

func (h *hub) drop(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s)
}

// publish never blocks on a client: a subscriber with subQueue events
// waiting is disconnected (it can reconnect and read /v1/scans/last)
// rather than stall the scanner. It writes the event to the direct
// subscribers unless another publisher is writing, which will.
func (h *hub) publish(e card.Visit) (dropped int) {
	data, _ := json.Marshal(e)
	m := &message{Visit: e, data: data}
	h.mu.Lock()
	h.recent = append(h.recent, e)
	if len(h.recent) > h.keep {
		h.recent = h.recent[len(h.recent)-h.keep:]
	}
	for s := range h.subs {
		select {
		case s.ch <- m:
		default:
			h.dropLocked(s)
			dropped++
		}
	}
	for _, s := range h.direct { // dropLocked replaces h.direct, not this one
		if s.queued.Load() >= subQueue {
			h.dropLocked(s)
			dropped++
		}
	}
	if len(h.direct) > 0 {
		for _, s := range h.direct {
			s.queued.Add(1)
		}
		h.queue = append(h.queue, delivery{m: m, to: h.direct})
	}
	lead := !h.flushing && len(h.queue) > 0
	h.flushing = h.flushing || lead
	h.mu.Unlock()
	if lead {
		dropped += h.flush()
	}
	return dropped
}

// flush writes queued events to their direct subscribers, in order, until
// the queue is empty, and returns how many subscribers it disconnected. A
// write that fails leaves the connection closed, and its reader
// unsubscribes it.
func (h *hub) flush() (dropped int) {
	h.mu.Lock()
	for len(h.queue) > 0 {
		batch := h.queue
		h.queue, h.spare = h.spare[:0], nil
		h.mu.Unlock()
		for i, d := range batch {
			for _, s := range d.to {
				if !h.send(s, d.m) {
					dropped++
				}
				s.queued.Add(-1)
			}
			batch[i] = delivery{}
		}
		h.mu.Lock()
		h.spare = batch[:0]
	}
	h.flushing = false
	h.mu.Unlock()
	return dropped
}

// send writes m to a direct subscriber, or queues it if it is behind; it
// reports false if it disconnected the subscriber, subQueue events behind.
func (h *hub) send(s *sub, m *message) bool {
	if s.isClosed() {
		return true
	}
	s.mu.Lock()
	if s.behind {
		select {
		case s.ch <- m:
			s.mu.Unlock()
			return true
		default:
			s.mu.Unlock()
			h.drop(s)
			return false
		}
	}
	s.mu.Unlock()
	// No context deadline: sendConn bounds the wait, and a context that
	// can be done costs the library a callback registration per write.
	if s.ws.Write(context.Background(), websocket.MessageText, m.data) == nil && s.conn.backlogged() {
		s.mu.Lock()
		s.behind = true
		s.mu.Unlock()
		go h.catchUp(s)
	}
	return true
}

// catchUp writes out a direct subscriber's channel, each event once the
// socket took the previous one, until the channel is empty: the subscriber
// is then written to directly again.
func (h *hub) catchUp(s *sub) {
	for {
		if s.conn.wait() != nil || s.isClosed() {
			return
		}
		s.mu.Lock()
		var m *message
		select {
		case m = <-s.ch:
		default:
			s.behind = false
		}
		s.mu.Unlock()
		if m == nil {
			return
		}
		if s.ws.Write(context.Background(), websocket.MessageText, m.data) != nil {
			return
		}
	}
}

func (h *hub) last() (card.Visit, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recent) == 0 {
		return card.Visit{}, false
	}
	return h.recent[len(h.recent)-1], true
}

func (h *hub) find(id string) (card.Visit, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.recent) - 1; i >= 0; i-- {
		if h.recent[i].ID == id {
			return h.recent[i], true
		}
	}
	return card.Visit{}, false
}

func (h *hub) snapshot(n int) []card.Visit {
	h.mu.Lock()
	defer h.mu.Unlock()
	start := max(0, len(h.recent)-n)
	return append([]card.Visit(nil), h.recent[start:]...)
}

func (h *hub) clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) + len(h.direct)
}
