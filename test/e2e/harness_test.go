//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scanagent-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "scanagent")
	// Built as scripts/package.sh builds the released binary (stripped,
	// position-independent), so that what the benchmarks measure (RSS,
	// start-up) is what hospitals run.
	out, err := exec.Command("go", "build", "-trimpath", "-buildmode=pie", "-ldflags=-s -w", "-o", binary, "scanagent/cmd/scanagent").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// event is one JSON log line of the agent.
type event map[string]any

func (e event) str(k string) string { s, _ := e[k].(string); return s }
func (e event) identity() map[string]any {
	m, _ := e["identity"].(map[string]any)
	return m
}

// agent is a running scanagent process.
type agent struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan event
	mu     sync.Mutex
	lines  []string
	done   chan struct{}
	err    error
}

type setup struct {
	t        *testing.T
	dir      string
	platform *platform.Server
	pURL     string
	dev      *device.Device
	link     string
	debounce string
	his      string // the [his.*] tables
	// report is the source's usage-report keys (scene, department,
	// card_channel); "" leaves reporting static codes to the HIS.
	report   string
	logLevel string
	// breakerCooldown: long by default, so an outage's breaker stays open
	// for the test's duration.
	breakerCooldown string
}

func newSetup(t *testing.T, dev device.Options) *setup {
	t.Helper()
	s := &setup{t: t, dir: t.TempDir(), debounce: "2s", report: "scene = \"010101\"\ndepartment = \"内科\"\ncard_channel = \"0100\"", logLevel: "debug", breakerCooldown: "1h", his: "[his.api]\nenabled = false"}
	s.platform = platform.New(platform.Config{Strict: true})
	srv := httptest.NewServer(s.platform.Handler())
	t.Cleanup(srv.Close)
	s.pURL = srv.URL
	s.link = filepath.Join(s.dir, "scanner")
	dev.Link = s.link
	d, err := device.New(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s.dev = d
	return s
}

// config writes a configuration for the fakes: agent holds extra [agent]
// keys, source extra keys of the scanner source.
func (s *setup) config(source, extra string) string {
	skm := platform.DefaultSKM()
	cfg := fmt.Sprintf(`
[agent]
terminal_id = "e2e-01"
data_dir = %q
shutdown_timeout = "5s"
%s
[log]
level = %q
format = "json"

[platform]
%sretries = 0
breaker_failures = 2
breaker_cooldown = %q
connect_timeout = "500ms"
request_timeout = "1s"

[skm]
enabled = true
base_url = %q
app_mark = %q
app_secret = %q
cipher_key = %q

[code]
debounce = %q

[[code.custom]]
name = "hospital_card"
pattern = '^HC[0-9]{10}$'

[[source]]
name = "counter"
port = %q
%s
%s

%s
`, s.dir, extra, s.logLevel, platformTOML(s.pURL),
		s.breakerCooldown, s.pURL, skm.AppMark, skm.AppSecret, skm.Key, s.debounce, s.link, source, s.report, s.his)
	path := filepath.Join(s.dir, "scanagent.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// platformTOML is the [platform] keys that point an agent at a fake
// platform with the guide's example credentials.
func platformTOML(url string) string {
	d := platform.Defaults()
	return fmt.Sprintf(`app_id = %q
app_secret = %q
hospital_id = %q
base_url = "%s%s"
token_url = "%s%s"
use_city_code = "350200"
use_city_name = "厦门市"
hospital_code = "90003"
hospital_name = "示例医院"
`, d.AppID, d.AppSecret, d.HospitalID, url, strings.TrimSuffix(platform.APIPrefix, "/"), url, platform.TokenPath)
}

func (s *setup) start(cfgPath string) *agent {
	t := s.t
	t.Helper()
	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, a, cfgPath)
	a.waitFor("scanner connected", 10*time.Second)
	return a
}

// startProcess runs `scanagent run -c cfgPath` and feeds a's events from
// its JSON log; the process is killed when the test ends.
func startProcess(t *testing.T, a *agent, cfgPath string) {
	t.Helper()
	startBinary(t, a, binary, cfgPath)
}

// startBinary is startProcess with another build of the agent (a.cmd.Env,
// when set beforehand, is its environment).
func startBinary(t *testing.T, a *agent, bin, cfgPath string) {
	t.Helper()
	env := a.cmd
	a.cmd = exec.Command(bin, "run", "-c", cfgPath)
	if env != nil {
		a.cmd.Env = env.Env
	}
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.lines = append(a.lines, line)
			a.mu.Unlock()
			var e event
			if json.Unmarshal([]byte(line), &e) == nil {
				a.events <- e
			}
		}
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent log (%s):\n%s", filepath.Base(cfgPath), a.log())
		}
	})
}

// apiAddr is the address the agent's local API listens on, from its last
// "listening" line (a reload rebinds port 0).
func (a *agent) apiAddr() string {
	a.t.Helper()
	addr := ""
	for _, line := range strings.Split(a.log(), "\n") {
		var e event
		if json.Unmarshal([]byte(line), &e) == nil && e.str("message") == "listening" {
			addr = e.str("addr")
		}
	}
	if addr == "" {
		a.t.Fatal("the agent logged no listening address")
	}
	return addr
}

func (a *agent) log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.lines, "\n")
}

// waitFor returns the next event with message msg.
func (a *agent) waitFor(msg string, d time.Duration) event {
	a.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-a.events:
			if e.str("message") == msg {
				return e
			}
		case <-deadline:
			a.t.Fatalf("no %q within %v", msg, d)
		case <-a.done:
			a.t.Fatalf("agent exited (%v) before %q", a.err, msg)
		}
	}
}

// next returns the next event with message msg, or false when none came
// within d or the agent exited (for a goroutine that must not fail the
// test itself).
func (a *agent) next(msg string, d time.Duration) (event, bool) {
	deadline := time.After(d)
	for {
		select {
		case e := <-a.events:
			if e.str("message") == msg {
				return e, true
			}
		case <-deadline:
			return nil, false
		case <-a.done:
			return nil, false
		}
	}
}

func (a *agent) noScan(d time.Duration) {
	a.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-a.events:
			if e.str("message") == "scan" {
				a.t.Fatalf("unexpected scan outcome: %v", e)
			}
		case <-deadline:
			return
		}
	}
}

func (a *agent) stop(sig syscall.Signal, within time.Duration) {
	a.t.Helper()
	a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(within):
		a.t.Fatalf("agent did not exit within %v of %v", within, sig)
	}
}
