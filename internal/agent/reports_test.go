package agent

import (
	"testing"

	"scanagent/internal/config"
)

// A source's card_channel may name the channel (guide §3.2.7's "服务号",
// §3.3.3's "自助机"); its reports carry the code. A source without both
// scene and card_channel reports nothing.
func TestReportDefaultsCarryTheChannelCode(t *testing.T) {
	cfg := config.Config{Sources: []config.Source{
		{Name: "kiosk", Scene: "0101051", CardChannel: "自助机"},
		{Name: "counter", Scene: "0101051", CardChannel: "0100"},
		{Name: "silent", Scene: "0101051"},
	}}
	m := reportDefaults(cfg)
	if got := m["kiosk"].Channel; got != "0200" {
		t.Errorf("kiosk channel %q, want 0200", got)
	}
	if got := m["counter"].Channel; got != "0100" {
		t.Errorf("counter channel %q, want 0100", got)
	}
	if _, ok := m["silent"]; ok {
		t.Error("a source without card_channel reports")
	}
}
