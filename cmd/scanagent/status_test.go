package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"scanagent/internal/testcert"
)

// fakeAgent serves a fixed /v1/status.
func fakeAgent(t *testing.T, status map[string]any) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(status)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// apiConfig writes a configuration whose local API is addr.
func apiConfig(t *testing.T, addr, extra string) string {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte(fmt.Sprintf("[agent]\ndata_dir = %q\n[platform]\nmode = \"off\"\n[his.api]\nlisten = %q\n%s", dir, addr, extra)), 0o600)
	return p
}

func reason(code, severity, msg string) map[string]any {
	return map[string]any{"code": code, "severity": severity, "message": msg}
}

func TestStatusExitCodes(t *testing.T) {
	base := func(level string, reasons ...map[string]any) map[string]any {
		if reasons == nil {
			reasons = []map[string]any{}
		}
		return map[string]any{"version": "1.2.3", "terminal": "kiosk-12", "uptime": "3m0s", "hisClients": 2,
			"sources":  []map[string]any{{"name": "counter", "connected": true, "since": time.Now().Add(-time.Hour), "scans": 7}},
			"platform": map[string]any{"mode": "direct", "tokenAge": "12m0s", "hasToken": true, "consecutiveFailures": 0},
			"queue":    map[string]any{"depth": 0, "dead": 0, "delivered": 340, "fileSize": 1 << 20},
			"his":      map[string]any{"api": map[string]int{"delivered": 7}, "push": map[string]int{"delivered": 7, "failed": 0}},
			"health":   map[string]any{"level": level, "reasons": reasons}}
	}
	unconfigured := base("ok")
	unconfigured["setup"] = map[string]any{"configured": false, "missing": []string{"platform.app_id"}, "hint": "edit /etc/scanagent/scanagent.toml, then systemctl restart scanagent"}
	delete(unconfigured, "health") // an agent that computes none: setup alone decides
	tests := []struct {
		name   string
		status map[string]any
		code   int
		has    []string
	}{
		{"ok", base("ok"), 0, []string{"scanagent OK: scanning and reporting", "counter: connected since", "7 scans", "direct: reachable, appToken 12m0s old",
			"0 queued; 0 dead letters; 340 delivered; file 1.0 MB", "2 clients connected; push 7 delivered, 0 failed"}},
		{"degraded", base("degraded", reason("platform_unreachable", "amber", "the platform is unreachable (3 calls failed in a row); 12 reports queued, the oldest 7 min: check")), 1,
			[]string{"scanagent DEGRADED: 1 problem\n", "  ! the platform is unreachable (3 calls failed in a row); 12 reports queued, the oldest 7 min"}},
		{"critical", base("critical", reason("scanner_disconnected", "red", `scanner "counter" not connected`), reason("dead_letters", "amber", "2 reports refused")), 2,
			[]string{"scanagent CRITICAL: 2 problems", `  ✗ scanner "counter" not connected`, "  ! 2 reports refused"}},
		{"not configured", unconfigured, 1, []string{"scanagent NOT CONFIGURED", "not configured yet: fill in platform.app_id; edit /etc/scanagent/scanagent.toml, then systemctl restart scanagent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeAgent(t, tt.status)
			cfg := apiConfig(t, strings.TrimPrefix(srv.URL, "http://"), "")
			r := run(t, "", nil, "status", "-c", cfg)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.out, r.err)
			}
			for _, h := range tt.has {
				if !strings.Contains(r.out, h) {
					t.Errorf("summary lacks %q:\n%s", h, r.out)
				}
			}
			if !strings.Contains(r.out, "page      "+srv.URL+"/") || strings.Contains(r.out, "{") || r.err != "" {
				t.Errorf("summary:\n%s\nstderr: %s", r.out, r.err)
			}
			// --json: the agent's JSON as is, the same exit code.
			r = run(t, "", nil, "status", "-c", cfg, "--json")
			var m map[string]any
			if r.code != tt.code || json.Unmarshal([]byte(r.out), &m) != nil || m["terminal"] != "kiosk-12" {
				t.Fatalf("--json: exit %d\n%s", r.code, r.out)
			}
			// --api names the agent without a configuration.
			if r := run(t, "", nil, "status", "--api", srv.URL); r.code != tt.code {
				t.Fatalf("--api: exit %d\n%s", r.code, r.out)
			}
		})
	}
}

func TestStatusAgentDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := apiConfig(t, addr, "")
	r := run(t, "", nil, "status", "-c", cfg)
	if r.code != 2 || !strings.Contains(r.out, "scanagent DOWN: the agent does not answer at http://"+addr) || !strings.Contains(r.out, "✗ install it") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = run(t, "", nil, "status", "-c", cfg, "--json")
	var m struct {
		Health struct {
			Level string `json:"level"`
		} `json:"health"`
	}
	if r.code != 2 || json.Unmarshal([]byte(r.out), &m) != nil || m.Health.Level != "down" {
		t.Fatalf("--json: exit %d\n%s", r.code, r.out)
	}
	// Something else answering is no agent either.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	defer other.Close()
	if r := run(t, "", nil, "status", "--api", other.URL); r.code != 2 || !strings.Contains(r.out, "not the agent's status") {
		t.Fatalf("not an agent: exit %d\n%s", r.code, r.out)
	}
	// A refused token says where to put it.
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	defer locked.Close()
	if r := run(t, "", nil, "status", "--api", locked.URL); r.code != 2 || !strings.Contains(r.out, "SCANAGENT_HIS_TOKEN") {
		t.Fatalf("401: exit %d\n%s", r.code, r.out)
	}
	if r := run(t, "", nil, "status", "--api", "127.0.0.1:8470"); r.code != 2 || !strings.Contains(r.err, "give the agent's address") {
		t.Fatalf("bad --api: %+v", r)
	}
	if r := run(t, "", nil, "status", "-h"); r.code != 0 || !strings.Contains(r.err, "0  ok") || !strings.Contains(r.err, "2  critical") {
		t.Fatalf("status -h documents the exit codes: %+v", r)
	}
}

// With his.api.tls_cert the hints and the request use https, and the
// agent's certificate is pinned: another certificate is refused.
func TestStatusOverTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, _ := testcert.Write(t, dir, "a", time.Time{})
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"health": map[string]any{"level": "ok", "reasons": []any{}}, "platform": map[string]any{"mode": "off"}})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	_, port, _ := net.SplitHostPort(addr)
	// Listening on every address: asked on this machine's.
	cfg := apiConfig(t, "0.0.0.0:"+port, fmt.Sprintf("tls_cert = %q\ntls_key = %q\nallow_remote = true\ntoken = \"0123456789abcdef0123456789abcdef\"\n", certPath, keyPath))
	r := run(t, "", nil, "status", "-c", cfg)
	if r.code != 0 || !strings.Contains(r.out, "page      https://127.0.0.1:"+port+"/") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	otherCert, otherKey, _ := testcert.Write(t, dir, "b", time.Time{})
	cfg = apiConfig(t, addr, fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", otherCert, otherKey))
	if r := run(t, "", nil, "status", "-c", cfg); r.code != 2 || !strings.Contains(r.out, "https://"+addr) || !strings.Contains(r.out, "not the one in") {
		t.Fatalf("another certificate: exit %d\n%s", r.code, r.out)
	}
}

func TestCLIPolish(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"-version"}, {"version"}} {
		if r := run(t, "", nil, args...); r.code != 0 || !strings.HasPrefix(r.out, "scanagent ") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	// main prefixes "scanagent: "; no message starts with it again.
	for _, args := range [][]string{{"frobnicate"}, {"config", "nope"}, {"run"}, {"queue", "stats"}, {"doctor"}} {
		r := run(t, "", nil, args...)
		last := r.err[strings.LastIndex(strings.TrimRight(r.err, "\n"), "\n")+1:]
		if r.code == 0 || strings.HasPrefix(last, "scanagent:") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	if r := run(t, "", nil, "config", "nope"); !strings.Contains(r.err, `config: unknown command "nope": run 'scanagent config help'`) {
		t.Errorf("subcommand error: %q", r.err)
	}
	if r := run(t, "", nil, "run"); !strings.Contains(r.err, "missing -c FILE: name the configuration file") {
		t.Errorf("run without -c: %q", r.err)
	}
	if r := run(t, "", nil, "run", "-c", filepath.Join(t.TempDir(), "none.toml")); !strings.Contains(r.err, "check the path") {
		t.Errorf("missing file: %q", r.err)
	}
	r := run(t, "", nil, "ports")
	for i, line := range strings.Split(strings.TrimSuffix(r.out, "\n"), "\n") {
		if strings.TrimSpace(line) == "" || strings.TrimRight(line, " \t") != line {
			t.Errorf("ports line %d is blank or padded: %q\n%s", i, line, r.out)
		}
	}
}
