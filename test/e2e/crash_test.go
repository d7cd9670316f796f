//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
)

// TestCrashExactlyOnce posts usage reports to the real binary's local API
// while kill -9 hits the agent at random moments and the fake platform has
// outage windows; afterwards every report acknowledged with 202 reached the
// platform exactly once. CI runs a short version; scripts/crash.sh runs the
// full one (SCANAGENT_CRASH_N=10000 SCANAGENT_CRASH_KILLS=20).
func TestCrashExactlyOnce(t *testing.T) {
	n, kills := envInt("SCANAGENT_CRASH_N", 600), envInt("SCANAGENT_CRASH_KILLS", 5)
	if testing.Short() {
		n, kills = 200, 2
	}
	dir := t.TempDir()
	fake := platform.New(platform.Config{})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	cfg := fmt.Sprintf(`
[agent]
data_dir = %q
shutdown_timeout = "3s"
[log]
format = "json"
[platform]
%sretries = 0
breaker_failures = 5
breaker_cooldown = "200ms"
request_timeout = "500ms"
[queue]
retry_min = "50ms"
retry_max = "500ms"
concurrency = 8
[his.api]
listen = "127.0.0.1:0"
`, dir, platformTOML(srv.URL))
	cfgPath := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)

	var (
		mu       sync.Mutex
		addr     string
		accepted = map[int]bool{}
		cmd      *exec.Cmd
	)
	reAddr := regexp.MustCompile(`"addr":"([^"]+)".*"message":"listening"`)
	start := func() {
		c := exec.Command(binary, "run", "-c", cfgPath)
		var logBuf syncBuf
		c.Stderr = &logBuf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if m := reAddr.FindStringSubmatch(logBuf.String()); m != nil {
				mu.Lock()
				addr, cmd = m[1], c
				mu.Unlock()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent did not start:\n%s", logBuf.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	start()

	// Producers: post reports with unique departments; remember the 202s.
	var next atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body, _ := json.Marshal(map[string]string{"qrCodeText": platform.BuiltinCards()[i%3].QRCodeText, "scene": "010101", "department": "d-" + strconv.Itoa(i), "cardChannel": "0200"})
				for attempt := 0; attempt < 200; attempt++ {
					mu.Lock()
					a := addr
					mu.Unlock()
					req, _ := http.NewRequest("POST", "http://"+a+"/v1/usage", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", "d-"+strconv.Itoa(i)) // a retried POST is queued once
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 202 {
							mu.Lock()
							accepted[i] = true
							mu.Unlock()
							break
						}
					}
					time.Sleep(20 * time.Millisecond) // agent restarting: try again, as a HIS would
				}
			}
		}()
	}
	// Chaos: kill -9 at random moments; outage windows on the platform.
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		if k%2 == 0 {
			fake.SetFaults(platform.Faults{Reset: true, AfterProcess: rand.IntN(2) == 0, Until: time.Now().Add(300 * time.Millisecond)})
		}
		mu.Lock()
		c := cmd
		mu.Unlock()
		c.Process.Kill()
		c.Wait()
		start()
	}
	wg.Wait()
	fake.SetFaults(platform.Faults{})

	// Drain: everything accepted reaches the platform.
	count := func() map[string]int {
		got := map[string]int{}
		for _, r := range fake.Stats().Reports {
			got[r.Req["department"]]++
		}
		return got
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := count()
		missing := 0
		for i := range accepted {
			if got["d-"+strconv.Itoa(i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accepted reports never reached the platform", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	mu.Unlock()
	got := count()
	lost, doubled := 0, 0
	for i := range accepted {
		switch c := got["d-"+strconv.Itoa(i)]; {
		case c == 0:
			lost++
		case c > 1:
			doubled++
		}
	}
	for dep, c := range got {
		if c > 1 && !strings.HasPrefix(dep, "d-") {
			doubled++
		}
	}
	st := fake.Stats()
	fmt.Printf("accepted=%d delivered=%d lost=%d dup=%d (10054 replays recognised: %d; kills: %d)\n", len(accepted), len(got), lost, doubled, st.Duplicates, kills)
	if lost != 0 || doubled != 0 {
		t.Fatalf("lost=%d doubled=%d", lost, doubled)
	}
	if len(accepted) != n {
		t.Fatalf("only %d of %d reports were ever accepted", len(accepted), n)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}
