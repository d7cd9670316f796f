package his

import (
	"encoding/json"
	"sync"

	"scanagent/internal/card"
)

// hub fans events out to subscribers and remembers recent ones.
type hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	recent []card.Visit // newest last
	keep   int
}

// message is an event with its JSON, encoded once for every client.
type message struct {
	card.Visit
	data []byte
}

type sub struct {
	ch     chan message
	closed chan struct{}
	once   sync.Once
}

func (s *sub) close() { s.once.Do(func() { close(s.closed) }) }

func newHub(keep int) *hub { return &hub{subs: map[*sub]struct{}{}, keep: keep} }

func (h *hub) subscribe() *sub {
	s, _ := h.trySubscribe(0)
	return s
}

// trySubscribe subscribes unless max (> 0) subscribers are connected.
func (h *hub) trySubscribe(max int) (*sub, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if max > 0 && len(h.subs) >= max {
		return nil, false
	}
	s := &sub{ch: make(chan message, 64), closed: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s, true
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.close()
}

// publish never blocks: a subscriber whose buffer is full is disconnected
// (it can reconnect and read /v1/scans/last) rather than stall the scanner.
func (h *hub) publish(e card.Visit) (dropped int) {
	data, _ := json.Marshal(e)
	m := message{Visit: e, data: data}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recent = append(h.recent, e)
	if len(h.recent) > h.keep {
		h.recent = h.recent[len(h.recent)-h.keep:]
	}
	for s := range h.subs {
		select {
		case s.ch <- m:
		default:
			delete(h.subs, s)
			s.close()
			dropped++
		}
	}
	return dropped
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
	return len(h.subs)
}
