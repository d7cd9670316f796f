//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fleetEntry is a terminal as GET /v1/fleet lists it.
type fleetEntry struct {
	Terminal string `json:"terminal"`
	Campus   string `json:"campus"`
	Health   string `json:"health"`
	State    string `json:"state"`
	Colour   string `json:"colour"`
	Via      string `json:"via"`
	Online   bool   `json:"online"`
}

var fleetClient = &http.Client{Timeout: 2 * time.Second}

// readFleet reads the fleet view of the gateway at addr (host:port) with
// the fleet token.
func readFleet(addr, token string) (map[string]fleetEntry, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/fleet", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := fleetClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/fleet: HTTP %d", resp.StatusCode)
	}
	var ans struct {
		Result struct {
			Terminals []fleetEntry `json:"terminals"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return nil, err
	}
	m := map[string]fleetEntry{}
	for _, e := range ans.Result.Terminals {
		m[e.Terminal] = e
	}
	return m, nil
}

// allOnline says which of ids the fleet does not list online ("" when
// none).
func allOnline(f map[string]fleetEntry, ids []string) string {
	var missing []string
	for _, id := range ids {
		if !f[id].Online {
			missing = append(missing, id)
		}
	}
	return strings.Join(missing, ", ")
}

// waitFleetOnline waits until the gateway at addr lists every terminal of
// ids online, and returns its view.
func waitFleetOnline(t *testing.T, addr, token string, ids ...string) map[string]fleetEntry {
	t.Helper()
	var f map[string]fleetEntry
	var err error
	waitUntilWithin(t, addr+" to list "+strings.Join(ids, ", ")+" online", 15*time.Second, func() bool {
		f, err = readFleet(addr, token)
		return err == nil && allOnline(f, ids) == ""
	})
	return f
}

// fleetWatch polls one gateway's fleet view every 250 ms, for as long as
// a test runs, and notes every poll in which a terminal is not online.
type fleetWatch struct {
	token      string
	want       []string
	stop, done chan struct{}

	mu     sync.Mutex
	addr   string
	gen    int // of addr
	polled int // gen of the last poll
	polls  int
	misses []string
}

// watchFleet starts polling the gateway at addr.
func watchFleet(addr, token string, ids ...string) *fleetWatch {
	w := &fleetWatch{token: token, want: ids, addr: addr, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *fleetWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.mu.Lock()
		addr, gen := w.addr, w.gen
		w.mu.Unlock()
		f, err := readFleet(addr, w.token)
		miss := ""
		switch {
		case err != nil:
			miss = err.Error()
		case allOnline(f, w.want) != "":
			miss = allOnline(f, w.want) + " not online"
		}
		w.mu.Lock()
		w.polls++
		w.polled = gen
		if miss != "" {
			w.misses = append(w.misses, time.Now().Format("15:04:05.000")+" "+addr+": "+miss)
		}
		w.mu.Unlock()
	}
}

// use polls the gateway at addr from now on: it returns once a poll of
// it completed (so a gateway about to be stopped is no longer polled).
func (w *fleetWatch) use(t *testing.T, addr string) {
	t.Helper()
	w.mu.Lock()
	w.addr = addr
	w.gen++
	gen := w.gen
	w.mu.Unlock()
	waitUntilWithin(t, "the fleet watch to poll "+addr, 10*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.polled == gen
	})
}

// finish stops polling: how many polls, and the misses.
func (w *fleetWatch) finish() (int, []string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	sort.Strings(w.misses)
	return w.polls, w.misses
}
