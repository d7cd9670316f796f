package card

import (
	"testing"
	"time"
)

// The tables are the guide's §3.3, row for row.
func TestTables(t *testing.T) {
	if n := len(Scenes()); n != 36 {
		t.Errorf("%d scenes, the guide's §3.3.1 lists 36", n)
	}
	if n := len(CardTypes()); n != 12 {
		t.Errorf("%d card types, §3.3.2 lists 12", n)
	}
	if n := len(Channels()); n != 7 {
		t.Errorf("%d channels, §3.3.3 lists 7", n)
	}
	for _, tt := range []struct {
		lookup func(string) (string, bool)
		code   string
		name   string
	}{
		{SceneName, "010101", "挂号"}, {SceneName, "0101015", "当日取号"}, {SceneName, "00000", "其他"},
		{SceneName, "999999", ""}, {SceneName, "", ""}, {CardTypeName, "11", "健康卡"}, {CardTypeName, "99", "其他法定有效证件"},
		{CardTypeName, "12", ""}, {ChannelName, "0200", "自助机"}, {ChannelName, "01", ""}, {FeeTypeName, "0200", "医保"},
	} {
		name, ok := tt.lookup(tt.code)
		if name != tt.name || ok != (tt.name != "") {
			t.Errorf("%q → %q %v, want %q", tt.code, name, ok, tt.name)
		}
	}
	for scene, want := range map[string]bool{"010101": true, "0101011": true, "0101012": true, "0101015": false, "010105": false} {
		if SceneNeedsDepartment(scene) != want {
			t.Errorf("SceneNeedsDepartment(%s) != %v", scene, want)
		}
	}
}

// A 用卡渠道 is accepted as a code, a name of the table or a name
// reportHISData's description uses; reports carry the code.
func TestChannelCode(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"0401", "0401", true}, {"服务号", "0401", true}, {"人工窗口", "0100", true}, {"窗口", "0100", true},
		{"app", "0000", true}, {"其他", "0000", true}, {"小程序", "0402", true},
		{"01", "", false}, {"", "", false}, {"微信", "", false},
	} {
		if got, ok := ChannelCode(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("ChannelCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	r := Report{CardChannel: "服务号"}
	ReportDefaults{}.Fill(&r, time.Now())
	if r.CardChannel != "0401" {
		t.Errorf("Fill kept channel %q, want the code 0401", r.CardChannel)
	}
}
