package config

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxFleetName bounds the names a terminal shows in the fleet view (its
// id, its campus): the fleet registry refuses longer ones
// (internal/fleet.MaxName).
const maxFleetName = 64

// validateHeartbeat checks a terminal's heartbeat settings.
func (c *Config) validateHeartbeat(v *validator) {
	p := &c.Platform
	if d := p.HeartbeatInterval.D(); d != 0 && (d < time.Second || d > time.Hour) {
		v.add("platform.heartbeat_interval", "must be 0 (no heartbeats) or between 1s and 1h")
	}
	if msg := fleetName(p.Campus); msg != "" {
		v.add("platform.campus", "%s", msg)
	}
}

// validateFleet checks an enabled gateway's fleet view settings.
func (c *Config) validateFleet(v *validator) {
	g := &c.Gateway
	tok := g.FleetToken.Reveal()
	if tok != "" && len(tok) < 16 {
		v.add("gateway.fleet_token", "at least 16 characters (or leave it out: no fleet view)")
	}
	for i, t := range g.Terminals {
		p := fmt.Sprintf("gateway.terminal[%d]", i)
		if tok != "" && t.Token.Reveal() == tok {
			v.add("gateway.fleet_token", "must differ from %s.token: a terminal must not see the fleet", p)
		}
		if msg := fleetName(t.ID); msg != "" {
			v.add(p+".id", "%s (it names the terminal in the fleet view)", msg)
		}
	}
	offline, silent := g.OfflineAfter.D(), g.SilentAfter.D()
	switch {
	case offline < time.Second || offline > 24*time.Hour || offline%time.Second != 0:
		v.add("gateway.offline_after", "must be whole seconds between 1s and 24h (with [gateway.ha] it is an etcd lease)")
	case c.Platform.HeartbeatInterval > 0 && offline < c.Platform.HeartbeatInterval.D():
		v.add("gateway.offline_after", "must be at least platform.heartbeat_interval (%v), the terminals' interval (set it here as on them): shorter, terminals go offline between two heartbeats; 3 × it is a good value", c.Platform.HeartbeatInterval.D())
	}
	if silent < offline {
		v.add("gateway.silent_after", "must be at least gateway.offline_after (%v): a silent terminal is one offline for long", offline)
	}
}

// fleetName says what is wrong with a name the fleet view shows ("" when
// nothing).
func fleetName(s string) string {
	if utf8.RuneCountInString(s) > maxFleetName {
		return fmt.Sprintf("at most %d characters", maxFleetName)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 || !utf8.ValidString(s) {
		return "must not hold control characters"
	}
	return ""
}
