package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"scanagent/configs"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSampleParsesAndValidates(t *testing.T) {
	c, err := Parse(Sample, "scanagent.toml", noEnv)
	if err != nil {
		t.Fatalf("embedded sample does not validate:\n%v", err)
	}
	if len(c.Sources) != 1 || c.Sources[0].Baud != 9600 || c.Code.Debounce.D() != 2*time.Second {
		t.Fatalf("sample not applied: %+v", c)
	}
	if c.Queue.Path != filepath.Join(c.Agent.DataDir, "outbox.db") {
		t.Fatalf("queue path default = %q", c.Queue.Path)
	}
}

// Every field of Config must appear in the sample, commented or not, so the
// sample really documents every option.
func TestSampleCoversEveryKey(t *testing.T) {
	sample := string(Sample)
	for _, key := range tomlKeys(t) {
		re := regexp.MustCompile(`(?m)^(# ?)?(` + regexp.QuoteMeta(key) + ` =|\[\[?` + regexp.QuoteMeta(key) + `\]\]?)`)
		if !re.MatchString(sample) {
			t.Errorf("sample does not mention %q", key)
		}
	}
}

func TestUnknownKeysNameLine(t *testing.T) {
	in := "[platform]\nmode = \"off\"\nhosptial_id = \"1\"\n\n[agent]\nshutdown = \"1s\"\n"
	_, err := Parse([]byte(in), "x.toml", noEnv)
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	msg := err.Error()
	for _, want := range []string{`x.toml:3:1: unknown key "platform.hosptial_id"`, `x.toml:6:1: unknown key "agent.shutdown"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestSyntaxAndTypeErrorsNameLine(t *testing.T) {
	for name, in := range map[string]string{
		"syntax":   "[platform]\nmode = \n",
		"type":     "[platform]\nmode = \"off\"\nretries = \"two\"\n",
		"duration": "[platform]\nmode = \"off\"\nrequest_timeout = \"5 seconds\"\n",
	} {
		_, err := Parse([]byte(in), "y.toml", noEnv)
		if err == nil || !strings.HasPrefix(err.Error(), "y.toml:") {
			t.Errorf("%s: err = %v, want y.toml:line prefix", name, err)
		}
	}
}

func TestValidationNamesFieldPaths(t *testing.T) {
	in := `
[agent]
offline = "maybe"
[platform]
mode = "direct"
app_id = "a1a2e0bde41574ad8ea9a4bb58022oop"
retries = 99
base_url = "http://platform.example.com/x"
[gateway]
enabled = true
[[gateway.terminal]]
id = "a"
token = "short"
[[code.custom]]
name = "Bad Name"
pattern = "("
[[source]]
name = "s"
baud = 12
suffix = "semicolon"
vid = "xyz"
[[source]]
name = "s"
type = "hid"
[queue]
full_policy = "panic"
encrypt = true
key = "00"
[his.api]
listen = "0.0.0.0:8470"
`
	_, err := Parse([]byte(in), "z.toml", noEnv)
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	want := []string{
		"agent.offline: must be one of refuse, unverified",
		"platform.app_secret: required",
		"platform.hospital_id: required",
		"platform.base_url: must use https",
		"platform.retries: must be between 0 and 10",
		"gateway.terminal[0].token: required",
		"code.custom[0].name:",
		"code.custom[0].pattern: invalid regular expression",
		"source[0].baud:",
		"source[0].suffix:",
		"source[0].vid: must be 4 hex digits",
		"source[0].pid: required",
		"source[1].name: duplicate",
		"source[1].vid: required",
		"source[1].pid: required",
		"queue.full_policy:",
		"queue.key: must be 32 bytes",
		"his.api.listen: binds beyond loopback",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("from-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "[platform]\napp_id = \"a\"\nhospital_id = \"1\"\nbase_url=\"http://127.0.0.1:1/x\"\ntoken_url=\"http://127.0.0.1:1/t\"\n" +
		"use_city_code = \"350200\"\nuse_city_name = \"厦门市\"\nhospital_code = \"1\"\nhospital_name = \"示例医院\"\n"
	tests := []struct {
		name, extra string
		env         map[string]string
		want        string
		wantErr     string
	}{
		{"inline", `app_secret = "inline-secret"`, nil, "inline-secret", ""},
		{"file", fmt.Sprintf("app_secret_file = %q", f), nil, "from-file-secret", ""},
		{"env wins over file", fmt.Sprintf("app_secret_file = %q", f), map[string]string{"SCANAGENT_APP_SECRET": "env-secret"}, "env-secret", ""},
		{"env only", "", map[string]string{"SCANAGENT_APP_SECRET": "env-secret"}, "env-secret", ""},
		{"both inline and file", fmt.Sprintf("app_secret = \"x\"\napp_secret_file = %q", f), nil, "", "platform.app_secret: set either"},
		{"missing file", `app_secret_file = "/nonexistent/secret"`, nil, "", "platform.app_secret_file: cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tt.extra+"\n"), "s.toml", envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Platform.AppSecret.Reveal(); got != tt.want {
				t.Fatalf("secret = %q, want %q", got, tt.want)
			}
			for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
				if strings.Contains(s, tt.want) {
					t.Fatalf("formatted config leaks the secret: %s", s)
				}
			}
		})
	}
}

func TestGatewayTerminalMustNotHoldSecret(t *testing.T) {
	in := "[platform]\nmode = \"gateway\"\ngateway_url = \"https://gw.lan:8471\"\ngateway_token = \"0123456789abcdef\"\napp_secret = \"s\"\n"
	_, err := Parse([]byte(in), "g.toml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "platform.app_secret: must not be set") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSuffix(t *testing.T) {
	for in, want := range map[string]string{"cr": "\r", "lf": "\n", "crlf": "\r\n", "none": "", "0x03": "\x03", "0x0d0a": "\r\n"} {
		got, err := ParseSuffix(in)
		if err != nil || string(got) != want {
			t.Errorf("ParseSuffix(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0x", "0xzz", "semicolon", "0x0102030405"} {
		if _, err := ParseSuffix(in); err == nil {
			t.Errorf("ParseSuffix(%q) accepted", in)
		}
	}
}

func TestLocalAPIHostsAndStreamClients(t *testing.T) {
	if d := Default().HIS.API; d.MaxStreamClients != 64 || len(d.AllowedHosts) != 0 {
		t.Fatalf("defaults: max_stream_clients = %d, allowed_hosts = %v", d.MaxStreamClients, d.AllowedHosts)
	}
	tests := []struct {
		name  string
		hosts []string
		max   int
		want  []string
	}{
		{"names and addresses", []string{"his.local", "HIS.hospital.lan:8470", "10.0.0.5", "10.0.0.5:8470", "[::1]:8470", "::1", "[fe80::1]"}, 64, nil},
		{"one client", nil, 1, nil},
		{"no clients", nil, 0, []string{"his.api.max_stream_clients: must be at least 1"}},
		{"an origin is not a host", []string{"his.local", "http://his.local"}, 64, []string{`his.api.allowed_hosts[1]: must be a host name or IP address`}},
		{"path", []string{"his.local/x"}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"empty", []string{""}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"space", []string{"his local"}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"bad port", []string{"his.local:99999"}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"empty port", []string{"his.local:"}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"wildcard", []string{"*.example"}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"name in brackets", []string{"[his.local]:8470"}, 64, []string{"his.api.allowed_hosts[0]: "}},
		{"IPv4 in brackets", []string{"[10.0.0.5]"}, 64, []string{"his.api.allowed_hosts[0]: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseValid(t)
			c.HIS.API.AllowedHosts, c.HIS.API.MaxStreamClients = tt.hosts, tt.max
			wantFieldErrors(t, c.Validate(), tt.want)
		})
	}
}

// A configuration with none of the platform credentials (the shipped one)
// is valid but "not configured yet"; filling in any of them makes the
// others required.
func TestUnconfigured(t *testing.T) {
	c, err := Parse([]byte(fmt.Sprintf("[agent]\ndata_dir = %q\n", t.TempDir())), "fresh.toml", noEnv)
	if err != nil {
		t.Fatalf("a configuration without credentials is refused: %v", err)
	}
	if got := c.Unconfigured(); len(got) != 7 || got[0] != "platform.app_id" || got[6] != "platform.hospital_name" {
		t.Fatalf("direct without credentials: %v", got)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("an unconfigured configuration is not invalid: %v", errs)
	}
	c.Platform.AppID = "a1a2e0bde41574ad8ea9a4bb58022oop"
	if got := c.Unconfigured(); got != nil {
		t.Fatalf("with an app_id: %v", got)
	}
	if errs := c.Validate(); !strings.Contains(errs.Error(), "platform.app_secret: required") || !strings.Contains(errs.Error(), "platform.hospital_name: required") {
		t.Fatalf("partly configured: %v", errs)
	}
	c.Platform = Default().Platform
	c.Platform.Mode = "gateway"
	if got := c.Unconfigured(); len(got) != 2 || got[0] != "platform.gateway_url" {
		t.Fatalf("gateway without url and token: %v", got)
	}
	c.Platform.Mode = "off"
	if got := c.Unconfigured(); got != nil {
		t.Fatalf("mode off: %v", got)
	}
}

// The configuration the packages install is valid and "not configured
// yet": the service starts on it and says what to fill in.
func TestShippedConfigIsUnconfigured(t *testing.T) {
	c, err := Parse(configs.Shipped(), "scanagent.toml", noEnv)
	if err != nil {
		t.Fatalf("the shipped configuration does not load: %v", err)
	}
	if got := c.Unconfigured(); len(got) != 7 {
		t.Fatalf("unconfigured %v, want the credentials and the hospital's verifyQRCode fields", got)
	}
	if c.Platform.BaseURL != Default().Platform.BaseURL || c.Platform.AppSecret.Reveal() != "" {
		t.Fatalf("shipped platform %q with a secret %v", c.Platform.BaseURL, c.Platform.AppSecret.Reveal() != "")
	}
}
