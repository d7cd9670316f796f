//go:build linux

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The configuration the packages install cannot go live by accident:
// `config check` says "not configured yet" (exit 1), and the agent started
// on it stays up, idle, logs what to fill in once, and its status says the
// same, until the file is configured and the agent restarted.
func TestShippedConfigIdles(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(binary, "config", "sample", "--shipped").Output()
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(out), `listen = "127.0.0.1:8470"`, `listen = "127.0.0.1:0"`, 1)
	cfg = strings.Replace(cfg, "# data_dir = \"/var/lib/scanagent\"", "data_dir = "+`"`+dir+`"`, 1)
	cfg = strings.Replace(cfg, `format = "auto"`, `format = "json"`, 1)
	path := filepath.Join(dir, "scanagent.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := exec.Command(binary, "config", "check", "-c", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(check), "not configured yet: fill in platform.app_id") {
		t.Fatalf("config check on the shipped file: %v\n%s", err, check)
	}

	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{})}
	startProcess(t, a, path)
	e := a.waitFor("not configured yet: edit "+path+", then systemctl restart scanagent; until then only the status page runs", 10*time.Second)
	if missing, _ := e["missing"].([]any); len(missing) != 7 {
		t.Fatalf("missing %v", e["missing"])
	}
	a.waitFor("agent ready", 5*time.Second)
	resp, err := http.Get("http://" + a.apiAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Setup struct {
			Configured bool     `json:"configured"`
			Missing    []string `json:"missing"`
			Hint       string   `json:"hint"`
		} `json:"setup"`
		Platform struct {
			Mode string `json:"mode"`
		} `json:"platform"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Setup.Configured || len(st.Setup.Missing) != 7 || !strings.Contains(st.Setup.Hint, "systemctl restart scanagent") || st.Platform.Mode != "off" {
		t.Fatalf("status %+v", st)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-a.done:
		t.Fatalf("the unconfigured agent exited: %v", a.err)
	default:
	}
	if _, err := os.Stat(filepath.Join(dir, "outbox.db")); !os.IsNotExist(err) {
		t.Fatalf("an unconfigured agent created its outbox: %v", err)
	}
}
