package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/test/fakeplatform/platform"
)

// doctorSetup is a data directory and a configuration around it.
type doctorSetup struct {
	dir, data string
}

func newDoctorSetup(t *testing.T) doctorSetup {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o750)
	return doctorSetup{dir: dir, data: data}
}

// write writes a configuration: [agent] with the data directory, then body.
func (s doctorSetup) write(t *testing.T, body string, mode os.FileMode) string {
	p := filepath.Join(s.dir, "scanagent.toml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("[agent]\nterminal_id = \"kiosk-12\"\ndata_dir = %q\n%s", s.data, body)), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

// directTOML points the platform at the fake with secret.
func directTOML(url, secret string) string {
	d := platform.Defaults()
	return fmt.Sprintf(`[platform]
app_id = %q
app_secret = %q
hospital_id = %q
base_url = "%s%s"
token_url = "%s%s"
use_city_code = "350200"
use_city_name = "厦门市"
hospital_code = "90003"
hospital_name = "示例医院"
[his.api]
enabled = false
`, d.AppID, secret, d.HospitalID, url, strings.TrimSuffix(platform.APIPrefix, "/"), url, platform.TokenPath)
}

func noPorts() scanner.Inventory {
	return scanner.Inventory{Serial: []scanner.SerialPort{}, HID: []scanner.HIDDevice{}}
}

func runDoctor(t *testing.T, args ...string) result {
	t.Helper()
	old := doctorPorts
	doctorPorts = noPorts
	defer func() { doctorPorts = old }()
	return run(t, "", nil, append([]string{"doctor"}, args...)...)
}

func has(t *testing.T, r result, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(r.out, l) {
			t.Errorf("doctor output lacks %q:\n%s", l, r.out)
		}
	}
}

// The signed getAppToken round trip happens only with --token-check, once,
// and nothing else reaches the platform.
func TestDoctorDirectTokenCheck(t *testing.T) {
	fake := platform.New(platform.Config{})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	s := newDoctorSetup(t)
	cfg := s.write(t, directTOML(srv.URL, platform.Defaults().AppSecret), 0o600)

	r := runDoctor(t, "-c", cfg)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	has(t, r, "✓ config: "+cfg+" validates", "✓ platform connect: 127.0.0.1:", "– getAppToken: not called: it gives out a new appToken and invalidates the one of every other process",
		"pass --token-check", "✓ outbox: no file yet at")
	if st := fake.Stats(); len(st.Calls) != 0 {
		t.Fatalf("doctor without --token-check called the platform: %v", st.Calls)
	}

	r = runDoctor(t, "-c", cfg, "--token-check")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	has(t, r, "note: calling getAppToken once", "✓ getAppToken: the platform accepted the signed request")
	if st := fake.Stats(); st.Tokens != 1 || len(st.Calls) != 1 || st.Calls["getAppToken"] != 1 {
		t.Fatalf("platform saw %v (tokens %d); want one getAppToken", st.Calls, st.Tokens)
	}

	// A wrong secret: the platform refuses the signature.
	cfg = s.write(t, directTOML(srv.URL, "0000000000000000000000000000dead"), 0o600)
	r = runDoctor(t, "-c", cfg, "--token-check")
	if r.code != 1 || !strings.Contains(r.err, "1 check(s) failed") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	has(t, r, "✗ getAppToken: getAppToken: platform error", "fix: check platform.app_id, platform.app_secret and platform.hospital_id")

	// The platform down: the connect fails, the token is not tried.
	srv.Close()
	r = runDoctor(t, "-c", cfg, "--token-check")
	has(t, r, "✗ platform connect:", "– getAppToken: not called: the platform is not reachable")
}

func TestDoctorGateway(t *testing.T) {
	const token = "terminal-token-0123456789abcdef"
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" || r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"mode":"direct","breakerOpen":false}`))
	}))
	defer gw.Close()
	s := newDoctorSetup(t)
	body := func(tok string) string {
		return fmt.Sprintf("[platform]\nmode = \"gateway\"\ngateway_url = %q\ngateway_token = %q\n[his.api]\nenabled = false\n", gw.URL, tok)
	}
	r := runDoctor(t, "-c", s.write(t, body(token), 0o600))
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
	has(t, r, "✓ gateway: "+gw.URL+" answers and accepts this terminal's token")
	r = runDoctor(t, "-c", s.write(t, body("wrong-token-0123456789abcdef0000"), 0o600))
	if r.code != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	has(t, r, "✗ gateway: the gateway refuses this terminal's token (HTTP 401)", `fix: set platform.gateway_token to the token the gateway lists for terminal "kiosk-12"`)

	// gateway_urls: each gateway is checked, the one down is named.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	urls := fmt.Sprintf("[platform]\nmode = \"gateway\"\ngateway_urls = [%q, %q]\ngateway_token = %q\n[his.api]\nenabled = false\n", down.URL, gw.URL, token)
	r = runDoctor(t, "-c", s.write(t, urls, 0o600))
	has(t, r, "✓ gateway: "+gw.URL+" answers and accepts this terminal's token")
	if !strings.Contains(r.out, "✗ gateway") || !strings.Contains(r.out, strings.TrimPrefix(down.URL, "http://")) {
		t.Errorf("the gateway that is down is not reported:\n%s", r.out)
	}
}

func TestDoctorLocalChecks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	s := newDoctorSetup(t)
	his := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			t.Errorf("doctor pushed: %s", r.Method)
		}
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	defer his.Close()
	mllp, _ := net.Listen("tcp", "127.0.0.1:0")
	defer mllp.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	port := filepath.Join(s.dir, "ttyFAKE0")
	os.WriteFile(port, nil, 0o600)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	apiAddr := free.Addr().String()
	free.Close()

	body := fmt.Sprintf(`[platform]
mode = "off"
[[source]]
name = "counter"
port = %q
[[source]]
name = "kiosk"
port = "/dev/ttyNOPE9"
[his.api]
listen = %q
token = "api-token-0123456789abcdef0123456789"
[his.push]
enabled = true
url = "%s/push"
secret = "push-secret-0123456789"
[his.hl7]
enabled = true
addr = %q
`, port, apiAddr, his.URL, mllp.Addr().String())
	// World-readable with secrets in it: ✗ with the fix.
	cfg := s.write(t, body, 0o644)
	r := runDoctor(t, "-c", cfg)
	if r.code != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	has(t, r, "✗ config permissions: "+cfg+" is readable by every user (-rw-r--r--) and it holds his.api.token, his.push.secret", "chmod 06",
		"✓ data directory: "+s.data+" is writable by the service user", "– outbox: platform.mode = \"off\": no outbox",
		`✓ scanner "counter": `+port+" is present", `✗ scanner "kiosk": serial port /dev/ttyNOPE9 not found`, "scanagent ports lists the ports this PC sees (it sees no serial port now)",
		"✓ HIS push: "+his.URL+"/push answers (HEAD: HTTP 405; nothing was pushed)", "✓ HIS HL7: "+mllp.Addr().String()+" accepts connections",
		"– local API: "+apiAddr+" is free: the agent is not running")

	// Fixed: closed file, no missing scanner, the HL7 target down.
	body = strings.Replace(body, `port = "/dev/ttyNOPE9"`, fmt.Sprintf("port = %q", port), 1)
	body = strings.Replace(body, mllp.Addr().String(), closedAddr, 1)
	cfg = s.write(t, body, 0o600)
	r = runDoctor(t, "-c", cfg)
	has(t, r, "✓ config permissions: "+cfg+" is closed to other users (-rw-------", "✗ HIS HL7: ", "check that the HIS's MLLP listener runs")
	if r.code != 1 || strings.Count(r.out, "✗") != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}

	// The data directory open to everyone.
	os.Chmod(s.data, 0o755)
	r = runDoctor(t, "-c", cfg)
	has(t, r, "✗ data directory: "+s.data+" is open to every user (-rwxr-xr-x): the outbox holds patients' data", "fix: chmod 0750 "+s.data)
}

func TestDoctorOutbox(t *testing.T) {
	s := newDoctorSetup(t)
	fake := httptest.NewServer(platform.New(platform.Config{}).Handler())
	defer fake.Close()
	cfg := s.write(t, directTOML(fake.URL, platform.Defaults().AppSecret), 0o600)
	q, err := queue.Open(queue.Options{Path: filepath.Join(s.data, "outbox.db"), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	q.Enqueue(context.Background(), card.RecordBind, []byte(`{"patid":"P1","qrCodeText":"x"}`))
	// Held by a running agent: fine, and said so.
	r := runDoctor(t, "-c", cfg)
	has(t, r, "✓ outbox: "+filepath.Join(s.data, "outbox.db")+" is held by the running agent")
	q.Close()
	r = runDoctor(t, "-c", cfg)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	has(t, r, "✓ outbox: "+filepath.Join(s.data, "outbox.db")+" opens: 1 pending (oldest")
}

func TestDoctorBadConfig(t *testing.T) {
	s := newDoctorSetup(t)
	cfg := s.write(t, "[platform]\nmode = \"direct\"\nbogus = 1\n", 0o600)
	r := runDoctor(t, "-c", cfg)
	if r.code != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	has(t, r, "✗ config: "+cfg+" has 1 problem(s):", `unknown key "platform.bogus"`, "fix: correct the lines above")
	if r := runDoctor(t); r.code != 2 || !strings.Contains(r.err, "missing -c FILE") {
		t.Fatalf("no -c: %+v", r)
	}
}
