package config

import (
	"strings"
	"testing"
	"time"
)

func TestFleetDefaultsAndValid(t *testing.T) {
	c, err := Parse([]byte(gatewayTOML), "g.toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if g.FleetToken != "" || g.OfflineAfter.D() != 90*time.Second || g.SilentAfter.D() != 5*time.Minute || c.Platform.HeartbeatInterval.D() != 30*time.Second {
		t.Fatalf("defaults: %+v, heartbeat %v", g, c.Platform.HeartbeatInterval)
	}
	c, err = Parse([]byte(gatewayTOML), "g.toml", envOf(map[string]string{"SCANAGENT_FLEET_TOKEN": "fleet-viewer-token-0123456789"}))
	if err != nil || c.Gateway.FleetToken.Reveal() != "fleet-viewer-token-0123456789" {
		t.Fatalf("fleet token from the environment: %v", err)
	}
	term := "[platform]\nmode = \"gateway\"\ngateway_url = \"http://gw1.lan:8471\"\ngateway_token = \"counter-01-token-0123456789\"\nheartbeat_interval = \"0s\"\ncampus = \"东院 2 号楼\"\n"
	c, err = Parse([]byte(term), "t.toml", noEnv)
	if err != nil || c.Platform.HeartbeatInterval != 0 || c.Platform.Campus != "东院 2 号楼" {
		t.Fatalf("terminal: %+v %v", c.Platform, err)
	}
}

func TestFleetValidation(t *testing.T) {
	term := "[platform]\nmode = \"gateway\"\ngateway_url = \"http://gw1.lan:8471\"\ngateway_token = \"counter-01-token-0123456789\"\n"
	long := strings.Repeat("院", 65)
	tests := []struct{ name, toml, want string }{
		{"short token", strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\nfleet_token = \"short\"\n", 1), "gateway.fleet_token: at least 16 characters"},
		{"terminal's token", strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\nfleet_token = \"counter-01-token-0123456789\"\n", 1), "gateway.fleet_token: must differ from gateway.terminal[0].token"},
		{"offline too short", strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\noffline_after = \"500ms\"\n", 1), "gateway.offline_after: must be whole seconds between 1s and 24h"},
		{"offline fractional", strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\noffline_after = \"90500ms\"\n", 1), "gateway.offline_after: must be whole seconds"},
		{"offline below heartbeat", strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\noffline_after = \"20s\"\n", 1), "gateway.offline_after: must be at least platform.heartbeat_interval (30s)"},
		{"silent below offline", strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\nsilent_after = \"60s\"\n", 1), "gateway.silent_after: must be at least gateway.offline_after (1m30s)"},
		{"long terminal id", strings.Replace(gatewayTOML, `id = "counter-01"`, `id = "`+long+`"`, 1), "gateway.terminal[0].id: at most 64 characters"},
		{"heartbeat too short", term + "heartbeat_interval = \"500ms\"\n", "platform.heartbeat_interval: must be 0 (no heartbeats) or between 1s and 1h"},
		{"heartbeat too long", term + "heartbeat_interval = \"2h\"\n", "platform.heartbeat_interval: must be 0"},
		{"long campus", term + "campus = \"" + long + "\"\n", "platform.campus: at most 64 characters"},
		{"campus control", term + "campus = \"a\\tb\"\n", "platform.campus: must not hold control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml), "x.toml", noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// The shortest heartbeat with a matching offline_after is fine.
	in := strings.Replace(gatewayTOML, "[gateway]\n", "[gateway]\noffline_after = \"3s\"\nsilent_after = \"3s\"\n", 1)
	in = strings.Replace(in, "[platform]\n", "[platform]\nheartbeat_interval = \"1s\"\n", 1)
	if _, err := Parse([]byte(in), "g.toml", noEnv); err != nil {
		t.Fatal(err)
	}
}
