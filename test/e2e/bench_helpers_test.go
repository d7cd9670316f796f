//go:build linux

package e2e

// Helpers of the benchmarks run by scripts/bench.sh (SCANAGENT_BENCH=1):
// the shipped configuration with only the outside world swapped for the
// fakes, the bare pty → WebSocket reader of test/bench/barereader, a
// WebSocket client that timestamps what it receives, CPU and RSS of a
// process from /proc, and perf profiles. Every measurement is printed as
// one line that test/bench/table aggregates:
//
//	bench <name> <label>=<value>... | <metric>=<number>...

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

func benchGate(t *testing.T) {
	t.Helper()
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
}

func benchInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func benchDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func benchList(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// benchLine prints one measurement for test/bench/table.
func benchLine(name, labels string, metrics ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "bench %s %s |", name, labels)
	for i := 0; i+1 < len(metrics); i += 2 {
		switch v := metrics[i+1].(type) {
		case float64:
			fmt.Fprintf(&b, " %s=%.4f", metrics[i], v)
		default:
			fmt.Fprintf(&b, " %s=%v", metrics[i], v)
		}
	}
	fmt.Println(b.String())
}

// ---- the shipped configuration

// tomlKey is one key of a TOML table set to a literal value.
type tomlKey struct{ table, key, value string }

var tomlTable = regexp.MustCompile(`^\[\[?\s*([^\]\s]+)\s*\]\]?`)

// setTOML sets key in the first [table] (or [[table]]) of text: it replaces
// the key's line, or else its commented-out sample line, or else inserts the
// key after the table's header. Comments and every other line stay.
func setTOML(text string, k tomlKey) (string, error) {
	lines := strings.Split(text, "\n")
	line := k.key + " = " + k.value
	keyRE := regexp.MustCompile(`^` + regexp.QuoteMeta(k.key) + `\s*=`)
	sampleRE := regexp.MustCompile(`^#\s*` + regexp.QuoteMeta(k.key) + `\s*=`)
	header, sample, cur := -1, -1, ""
	for i, l := range lines {
		tl := strings.TrimSpace(l)
		if m := tomlTable.FindStringSubmatch(tl); m != nil {
			if header >= 0 { // past the table
				break
			}
			if cur = m[1]; cur == k.table {
				header = i
			}
			continue
		}
		if header < 0 {
			continue
		}
		if keyRE.MatchString(tl) {
			lines[i] = line
			return strings.Join(lines, "\n"), nil
		}
		if sample < 0 && sampleRE.MatchString(tl) {
			sample = i
		}
	}
	switch {
	case header < 0:
		return "", fmt.Errorf("no [%s] table", k.table)
	case sample >= 0:
		lines[sample] = line
	default:
		lines = slices.Insert(lines, header+1, line)
	}
	return strings.Join(lines, "\n"), nil
}

// shipped is configs/scanagent.toml as read once, next to the binary
// TestMain built (the file may change while a long run goes on).
var shipped struct {
	once sync.Once
	text []byte
	err  error
}

// shippedConfig writes configs/scanagent.toml to dir with the outside
// world swapped for the fakes — the outbox in dir, the platform URLs at the
// fake platform, the scanner at the pty, the local API on a free loopback
// port (the shipped 127.0.0.1:8470 may be taken on a shared machine) —
// plus extra keys, and returns its path. Every other setting is the
// shipped default.
func shippedConfig(t *testing.T, dir, platformURL, port string, baud int, extra ...tomlKey) string {
	t.Helper()
	shipped.once.Do(func() { shipped.text, shipped.err = os.ReadFile("../../configs/scanagent.toml") })
	if shipped.err != nil {
		t.Fatal(shipped.err)
	}
	text := string(shipped.text)
	keys := append([]tomlKey{
		{"agent", "data_dir", strconv.Quote(dir)},
		{"platform", "base_url", strconv.Quote(platformURL + strings.TrimSuffix(platform.APIPrefix, "/"))},
		{"platform", "token_url", strconv.Quote(platformURL + platform.TokenPath)},
		{"source", "port", strconv.Quote(port)},
		{"source", "baud", strconv.Itoa(baud)},
		{"his.api", "listen", `"127.0.0.1:0"`},
	}, extra...)
	for _, k := range keys {
		var err error
		if text, err = setTOML(text, k); err != nil {
			t.Fatalf("configs/scanagent.toml: %v", err)
		}
	}
	path := filepath.Join(dir, "scanagent.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---- payloads

// benchCards are n patients with distinct static codes and ID numbers:
// under the shipped 2 s debounce a code scanned again within 2 s would be
// suppressed, so no payload repeats in a run.
func benchCards(n int) []platform.Card {
	cards := make([]platform.Card, n)
	for i := range cards {
		cards[i] = benchCard(i)
	}
	return cards
}

// benchCard is the i-th patient of benchCards.
func benchCard(i int) platform.Card {
	base := platform.BuiltinCards()
	c := base[i%len(base)]
	sum := sha256.Sum256(fmt.Appendf(nil, "scanagent bench card %d", i))
	id := strings.ToUpper(hex.EncodeToString(sum[:]))
	c.QRCodeText, c.HealthCardID, c.DynamicQRCodeText = id+":1", id[:32], ""
	c.IDNumber = benchIDNumber(i, 1)
	return c
}

// benchIDNumber is a valid GB 11643 ID number, distinct for each (i, series).
func benchIDNumber(i, series int) string {
	birth := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%30000)
	s := fmt.Sprintf("110105%s%03d", birth.Format("20060102"), (series*100+i/30000)%1000)
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for j := 0; j < 17; j++ {
		sum += int(s[j]-'0') * weights[j]
	}
	return s + string("10X98765432"[sum%11])
}

// ---- processes

// benchAgent is the real binary on a shipped configuration.
type benchAgent struct {
	*agent
	pid   int
	addr  string        // the local API
	ready time.Duration // process start → API listening, agent ready and scanner connected
}

// startShipped runs the binary and waits until it is ready: the local API
// listens, the agent logged "agent ready" and the scanner "scanner
// connected". Its log is read (and dropped) from then on.
func startShipped(t *testing.T, cfgPath string) *benchAgent {
	t.Helper()
	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	start := time.Now()
	startProcess(t, a, cfgPath)
	b := &benchAgent{agent: a, pid: a.cmd.Process.Pid}
	want := map[string]bool{"listening": true, "agent ready": true, "scanner connected": true}
	deadline := time.After(15 * time.Second)
	for len(want) > 0 {
		select {
		case e := <-a.events:
			msg := e.str("message")
			if !want[msg] {
				continue
			}
			delete(want, msg)
			if msg == "listening" {
				b.addr = e.str("addr")
			}
			b.ready = time.Since(start)
		case <-deadline:
			t.Fatalf("agent not ready within 15s; still waiting for %v", want)
		case <-a.done:
			t.Fatalf("agent exited (%v) before it was ready:\n%s", a.err, a.log())
		}
	}
	go func() {
		for {
			select {
			case <-a.events:
			case <-a.done:
				return
			}
		}
	}()
	return b
}

// status is the agent's GET /v1/status.
func (b *benchAgent) status(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + b.addr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

var bareBuild struct {
	once sync.Once
	path string
	err  error
}

// bareProc is test/bench/barereader on a pty.
type bareProc struct {
	cmd   *exec.Cmd
	pid   int
	addr  string
	ready time.Duration // process start → "listening" (port open, listener bound)
}

func startBare(t *testing.T, port string) *bareProc {
	t.Helper()
	bareBuild.once.Do(func() {
		bareBuild.path = filepath.Join(filepath.Dir(binary), "barereader")
		out, err := exec.Command("go", "build", "-o", bareBuild.path, "scanagent/test/bench/barereader").CombinedOutput()
		if err != nil {
			bareBuild.err = fmt.Errorf("build barereader: %v\n%s", err, out)
		}
	})
	if bareBuild.err != nil {
		t.Fatal(bareBuild.err)
	}
	cmd := exec.Command(bareBuild.path, "-port", port, "-suffix", "\r", "-read", benchList("SCANAGENT_BENCH_BARE_READ", "poll")[0])
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &bareProc{cmd: cmd, pid: cmd.Process.Pid}
	t.Cleanup(func() { p.stop() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("barereader: %v", err)
	}
	p.ready = time.Since(start)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("barereader said %q", line)
	}
	p.addr = addr
	return p
}

func (p *bareProc) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// benchDevice is a fake scanner typing at baud with the shipped CR suffix,
// behind dir/name.
func benchDevice(t *testing.T, dir, name string, baud int) (*device.Device, string) {
	t.Helper()
	link := filepath.Join(dir, name)
	d, err := device.New(device.Options{Link: link, Baud: baud, Suffix: "\r"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, link
}

// ---- /proc

// cpuPrecise is a process's CPU time: the sum of its threads' scheduler
// runtime (/proc/PID/task/*/sched, nanoseconds), or /proc/PID/stat's
// user+system ticks (10 ms) where the kernel has no sched files. Go
// programs do not end threads, so the sum over live threads is the total.
func cpuPrecise(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/sched", pid))
	var sum float64
	found := false
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "se.sum_exec_runtime" {
				if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					sum += ms
					found = true
				}
			}
		}
	}
	if !found {
		return procCPU(pid)
	}
	return time.Duration(sum * float64(time.Millisecond))
}

func mb(bytes int64) float64 { return float64(bytes) / 1e6 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the q-quantile of d by nearest rank (d is sorted in place).
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// ---- WebSocket client

type wsMsg struct {
	at   time.Time
	data []byte
	err  error
}

// wsClient timestamps each message as soon as its read returns.
type wsClient struct {
	conn *websocket.Conn
	msgs chan wsMsg
}

func dialWS(t *testing.T, addr string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	conn.SetReadLimit(1 << 20)
	c := &wsClient{conn: conn, msgs: make(chan wsMsg, 256)}
	go func() {
		for {
			_, b, err := conn.Read(context.Background())
			c.msgs <- wsMsg{at: time.Now(), data: b, err: err}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return c
}

// next is the next scan message ("type":"scan").
func (c *wsClient) next(d time.Duration) (wsMsg, scanMsg, error) {
	timeout := time.After(d)
	for {
		select {
		case m := <-c.msgs:
			if m.err != nil {
				return m, scanMsg{}, m.err
			}
			var s scanMsg
			if err := json.Unmarshal(m.data, &s); err != nil {
				return m, s, fmt.Errorf("%v: %s", err, m.data)
			}
			if s.Type != "scan" {
				continue
			}
			return m, s, nil
		case <-timeout:
			return wsMsg{}, scanMsg{}, fmt.Errorf("no scan message within %v", d)
		}
	}
}

// scanMsg is what the HIS client reads: the agent's scan event, or the
// bare reader's {"type":"scan","data":...}.
type scanMsg struct {
	Type     string `json:"type"`
	Kind     string `json:"kind"`
	Verified bool   `json:"verified"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Identity *struct {
		IDNumber string `json:"idNumber"`
	} `json:"identity"`
	LatencyMs  float64 `json:"latencyMs"`
	PlatformMs float64 `json:"platformMs"`
	Data       string  `json:"data"`
}

// ---- profiles

// startPerf samples pid's CPU with perf into $SCANAGENT_BENCH_PROFILE/name.*
// while the returned func has not been called: the binary serves no pprof
// endpoint, so the profile of the process is perf's (perf.data, and a
// report by symbol written while the binary still exists). Without the
// variable, or without perf, it does nothing.
func startPerf(t *testing.T, pid int, name string) (stop func()) {
	t.Helper()
	dir := os.Getenv("SCANAGENT_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		t.Logf("no perf on PATH: no profile of the binary")
		benchLine("profile", "prog=agent name="+name, "skipped", "no-perf")
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, name+".perf.data")
	cmd := exec.Command(perf, "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", data)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Logf("perf record: %v", err)
		return func() {}
	}
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		for suffix, args := range map[string][]string{
			".flat.txt":  {"report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort", "symbol", "--percent-limit", "0.5"},
			".graph.txt": {"report", "-i", data, "--stdio", "--children", "--sort", "symbol", "--percent-limit", "2"},
		} {
			out, err := exec.Command(perf, args...).Output()
			if err != nil {
				t.Logf("perf report: %v", err)
				continue
			}
			os.WriteFile(filepath.Join(dir, name+suffix), out, 0o644)
		}
		benchLine("profile", "prog=agent name="+name, "file", data)
	}
}
