//go:build linux

package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
)

// statusCLI runs `scanagent status -c cfg` (and with --json) and returns
// the summary and the exit code, checking that --json agrees.
func statusCLI(t *testing.T, cfg string) (string, int) {
	t.Helper()
	code := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	out, err := exec.Command(binary, "status", "-c", cfg).Output()
	c := code(err)
	js, err := exec.Command(binary, "status", "-c", cfg, "--json").Output()
	var m struct {
		Health struct {
			Level string `json:"level"`
		} `json:"health"`
	}
	if jc := code(err); jc != c || json.Unmarshal(js, &m) != nil || m.Health.Level == "" {
		t.Fatalf("status --json: exit %d (summary %d), level %q\n%s", jc, c, m.Health.Level, js)
	}
	return string(out), c
}

// TestStatusCLIStates: `scanagent status` exits 0 healthy, 1 degraded or
// not configured, 2 critical or down, and says why, against the real agent.
func TestStatusCLIStates(t *testing.T) {
	p := startPageAgent(t)
	expect := func(state string, want int, texts ...string) {
		t.Helper()
		out, code := statusCLI(t, p.cfg)
		if code != want {
			t.Fatalf("%s: exit %d, want %d\n%s", state, code, want, out)
		}
		for _, text := range texts {
			if !strings.Contains(out, text) {
				t.Errorf("%s: the summary lacks %q:\n%s", state, text, out)
			}
		}
	}
	p.healthy()
	expect("healthy", 0, "scanagent OK: scanning and reporting", "counter: connected since", "direct: reachable", "0 queued; 0 dead letters; 1 delivered",
		"http://"+p.addr+"/", "direct: reachable, appToken ")
	p.platformDown()
	expect("platform down", 1, "scanagent DEGRADED: 1 problem", "  ! the platform is unreachable (2 calls failed in a row", "3 reports queued",
		"direct: UNREACHABLE", "last error: reportHISData: HTTP 502")
	p.unplugged()
	expect("scanner unplugged", 2, "scanagent CRITICAL: 2 problems", `  ✗ scanner "counter" not connected`, "counter: NOT CONNECTED since")
	p.a.stop(syscall.SIGTERM, 10*time.Second)
	expect("agent down", 2, "scanagent DOWN: the agent does not answer at http://"+p.addr, "connection refused")

	t.Run("not configured", func(t *testing.T) {
		_, _, cfg := shippedAgent(t)
		out, code := statusCLI(t, cfg)
		if code != 1 || !strings.Contains(out, "scanagent NOT CONFIGURED") || !strings.Contains(out, "not configured yet: fill in platform.app_id") ||
			!strings.Contains(out, "edit "+cfg+", then systemctl restart scanagent") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}

// TestDoctorBesideRunningAgent runs `scanagent doctor --token-check` on
// the configuration of a running agent: every check passes (the outbox is
// held by the agent, its API answers, the scanner's port is there), exactly
// one getAppToken reaches the platform, and the agent, whose appToken that
// call invalidated, still verifies the next scan.
func TestDoctorBesideRunningAgent(t *testing.T) {
	p := startPageAgent(t)
	p.healthy()
	tokens := p.s.platform.Stats().Tokens
	os.Chmod(p.s.dir, 0o750) // the data directory: closed to other users, as the packages make it
	out, err := exec.Command(binary, "doctor", "-c", p.cfg, "--token-check").CombinedOutput()
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"✓ config: " + p.cfg + " validates", "✓ outbox: ", "is held by the running agent", `✓ scanner "counter": ` + p.s.link + " is present",
		"✓ getAppToken: the platform accepted the signed request", "✓ local API: the agent answers at http://" + p.addr + "/"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "✗") {
		t.Fatalf("doctor failed a check:\n%s", out)
	}
	if got := p.s.platform.Stats().Tokens - tokens; got != 1 {
		t.Fatalf("doctor fetched %d tokens, want 1", got)
	}
	p.s.dev.Type([]byte(platform.BuiltinCards()[0].QRCodeText))
	if e := p.a.waitFor("scan", 10*time.Second); e["verified"] != true {
		t.Fatalf("the agent does not recover from the token doctor took: %v", e)
	}
}
