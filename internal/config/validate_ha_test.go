package config

import (
	"strings"
	"testing"
	"time"
)

// gatewayTOML is a valid gateway (platform direct, one terminal) to which
// tests append a [gateway.ha] table.
const gatewayTOML = `
[platform]
app_id = "a1a2e0bde41574ad8ea9a4bb58022oop"
app_secret = "8c8e763f443ef983ac33aef1c7085cfb"
hospital_id = "90003"
base_url = "http://127.0.0.1:8480/x"
token_url = "http://127.0.0.1:8480/t"
use_city_code = "350200"
use_city_name = "厦门市"
hospital_code = "90003"
hospital_name = "示例医院"
[gateway]
enabled = true
[[gateway.terminal]]
id = "counter-01"
token = "counter-01-token-0123456789"
`

const haKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestHADefaultsAndValid(t *testing.T) {
	c, err := Parse([]byte(gatewayTOML), "g.toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Gateway.HA
	if h.Enabled || h.Prefix != "/scanagent/" || h.LeaseTTL.D() != 10*time.Second || !h.FollowersServe ||
		h.MinFetchInterval.D() != time.Minute || h.TokenWait.D() != 5*time.Second {
		t.Fatalf("defaults: %+v", h)
	}
	in := gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"10.0.0.11:2379\", \"http://10.0.0.12:2379\"]\n"
	c, err = Parse([]byte(in), "g.toml", envOf(map[string]string{"SCANAGENT_HA_TOKEN_KEY": haKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.HA.TokenKey.Reveal() != haKey {
		t.Fatal("token key not taken from the environment")
	}
}

func TestHAValidation(t *testing.T) {
	tests := []struct{ name, toml, want string }{
		{"needs a gateway", "[gateway.ha]\nenabled = true\n", "gateway.ha.enabled: needs gateway.enabled"},
		{"endpoints", gatewayTOML + "[gateway.ha]\nenabled = true\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.endpoints: at least one"},
		{"bad endpoint", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"etcd\"]\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.endpoints[0]: must be host:port"},
		{"http with TLS", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"http://10.0.0.1:2379\"]\nca_file = \"/nonexistent/ca.pem\"\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.endpoints[0]: is plain http"},
		{"missing CA", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"https://10.0.0.1:2379\"]\nca_file = \"/nonexistent/ca.pem\"\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.ca_file: cannot read"},
		{"no key", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"10.0.0.1:2379\"]\n", "gateway.ha.token_key: required"},
		{"short lease", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"10.0.0.1:2379\"]\nlease_ttl = \"6s\"\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.lease_ttl: must be between platform.request_timeout + 2s (7s)"},
		{"fractional lease", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"10.0.0.1:2379\"]\nlease_ttl = \"10500ms\"\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.lease_ttl: must be whole seconds"},
		{"interval", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"10.0.0.1:2379\"]\nmin_fetch_interval = \"0s\"\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.min_fetch_interval: must be at least 1s"},
		{"prefix", gatewayTOML + "[gateway.ha]\nenabled = true\nendpoints = [\"10.0.0.1:2379\"]\nprefix = \"scanagent\"\ntoken_key = \"" + haKey + "\"\n", "gateway.ha.prefix: must start with /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml), "g.toml", noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGatewayURLs(t *testing.T) {
	base := "[platform]\nmode = \"gateway\"\ngateway_token = \"counter-01-token-0123456789\"\n"
	c, err := Parse([]byte(base+"gateway_url = \"http://gw1.lan:8471\"\n"), "t.toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Platform.Gateways(); len(got) != 1 || got[0] != "http://gw1.lan:8471" {
		t.Fatalf("gateway_url as a list: %v", got)
	}
	c, err = Parse([]byte(base+"gateway_urls = [\"http://gw1.lan:8471\", \"https://gw2.lan:8471\"]\n"), "t.toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Platform.Gateways(); len(got) != 2 || got[1] != "https://gw2.lan:8471" {
		t.Fatalf("gateway_urls: %v", got)
	}
	for in, want := range map[string]string{
		"gateway_url = \"http://a:1\"\ngateway_urls = [\"http://b:1\"]\n": "platform.gateway_urls: set gateway_url (one gateway) or gateway_urls (several), not both",
		"gateway_urls = [\"http://a:1\", \"http://a:1/\"]\n":              "platform.gateway_urls[1]: \"http://a:1/\" is listed twice",
		"gateway_urls = [\"http://a:1\", \"ftp://b\"]\n":                  "platform.gateway_urls[1]: must be an http(s) URL",
	} {
		_, err := Parse([]byte(base+in), "t.toml", noEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", in, err, want)
		}
	}
	// Without a gateway nor a token the terminal is "not configured yet".
	c, err = Parse([]byte("[platform]\nmode = \"gateway\"\n"), "t.toml", noEnv)
	if err != nil || len(c.Unconfigured()) != 2 {
		t.Fatalf("unconfigured terminal: %v, %v", c.Unconfigured(), err)
	}
}
