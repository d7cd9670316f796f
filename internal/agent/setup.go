package agent

import (
	"fmt"
	"runtime"

	"github.com/rs/zerolog"

	"scanagent/internal/config"
)

// A configuration that is "not configured yet" (config.Unconfigured: the
// packages' shipped file) runs an idle agent: its local API answers (the
// status page and `scanagent status` say what to fill in), nothing else
// starts — no scanners, no platform, no outbox — and the service does not
// crash-loop.

// idle is cfg reduced to the agent's local API.
func idle(cfg config.Config) config.Config {
	cfg.Platform.Mode = "off"
	cfg.Sources = nil
	cfg.Gateway.Enabled = false
	cfg.SKM.Enabled = false
	cfg.HIS.Push.Enabled = false
	cfg.HIS.HL7.Enabled = false
	return cfg
}

// setupHint says what to do with an unconfigured file.
func setupHint(path string) string {
	restart := "systemctl restart scanagent"
	if runtime.GOOS == "windows" {
		restart = "scanagent restart (or restart the scanagent service)"
	}
	return fmt.Sprintf("edit %s, then %s", path, restart)
}

// idleIfUnconfigured logs the one line an unconfigured agent says, and
// returns the configuration to run and what is missing (nil: configured).
func idleIfUnconfigured(cfg config.Config, log zerolog.Logger) (config.Config, []string) {
	missing := cfg.Unconfigured()
	if missing == nil {
		return cfg, nil
	}
	log.Error().Strs("missing", missing).Msg("not configured yet: " + setupHint(cfg.Path) + "; until then only the status page runs")
	return idle(cfg), missing
}

// setupStatus is the "setup" part of /v1/status.
func (a *agent) setupStatus() map[string]any {
	if a.unconfigured == nil {
		return map[string]any{"configured": true}
	}
	return map[string]any{"configured": false, "missing": a.unconfigured, "hint": setupHint(a.cfg.Path)}
}
