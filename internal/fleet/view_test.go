package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestView(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	term := func(id, health string, online bool, seen time.Duration, depth int) Terminal {
		return Terminal{Heartbeat: Heartbeat{Terminal: id, Health: health, Queue: Queue{Depth: depth}}, Online: online, LastSeen: now.Add(-seen)}
	}
	ts := []Terminal{
		term("a-ok", HealthOK, true, 10*time.Second, 0),
		term("b-critical", HealthCritical, true, 5*time.Second, 3),
		term("c-offline", HealthOK, false, 2*time.Minute, 9),
		term("d-silent", HealthOK, false, 6*time.Minute, 1),
		term("e-degraded", HealthDegraded, true, 1*time.Second, 5),
		term("f-silent-longer", HealthCritical, false, 3*time.Hour, 0),
		term("g-unconfigured", HealthUnconfigured, true, 0, 0),
	}
	ids := func(es []Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Terminal.Terminal)
		}
		return strings.Join(s, " ")
	}
	for sort, want := range map[string]string{
		"":          "d-silent f-silent-longer b-critical g-unconfigured e-degraded c-offline a-ok",
		"health":    "d-silent f-silent-longer b-critical g-unconfigured e-degraded c-offline a-ok",
		"-health":   "d-silent f-silent-longer a-ok c-offline e-degraded b-critical g-unconfigured",
		"terminal":  "d-silent f-silent-longer a-ok b-critical c-offline e-degraded g-unconfigured",
		"-terminal": "f-silent-longer d-silent g-unconfigured e-degraded c-offline b-critical a-ok",
		"queue":     "d-silent f-silent-longer c-offline e-degraded b-critical a-ok g-unconfigured",
		"state":     "d-silent f-silent-longer g-unconfigured e-degraded b-critical a-ok c-offline",
		"last_seen": "d-silent f-silent-longer g-unconfigured e-degraded b-critical a-ok c-offline",
		"bogus":     "d-silent f-silent-longer b-critical g-unconfigured e-degraded c-offline a-ok",
	} {
		if got := ids(View(ts, now, 5*time.Minute, sort)); got != want {
			t.Errorf("sort %q:\n got %s\nwant %s", sort, got, want)
		}
	}
	byID := map[string]Entry{}
	for _, e := range View(ts, now, 5*time.Minute, "") {
		byID[e.Terminal.Terminal] = e
	}
	for id, want := range map[string]struct {
		state, colour string
		silentFor     int64
	}{
		"a-ok": {StateOnline, ColourGreen, 10}, "b-critical": {StateOnline, ColourRed, 5}, "c-offline": {StateOffline, ColourGrey, 120},
		"d-silent": {StateSilent, ColourGrey, 360}, "e-degraded": {StateOnline, ColourAmber, 1}, "g-unconfigured": {StateOnline, ColourRed, 0},
	} {
		e := byID[id]
		if e.State != want.state || e.Colour != want.colour || e.SilentForSeconds != want.silentFor || e.Silent != (want.state == StateSilent) {
			t.Errorf("%s: state %s colour %s silent for %ds, want %+v", id, e.State, e.Colour, e.SilentForSeconds, want)
		}
	}
}

func TestCount(t *testing.T) {
	ts := []Terminal{
		{Heartbeat: Heartbeat{Campus: "east"}, Online: true}, {Heartbeat: Heartbeat{Campus: "east"}, Online: false},
		{Heartbeat: Heartbeat{Campus: "east"}, Online: true}, {Heartbeat: Heartbeat{Campus: "west"}, Online: true}, {},
	}
	got := Count(ts)
	if got["east"][StateOnline] != 2 || got["east"][StateOffline] != 1 || got["west"][StateOnline] != 1 || got["west"][StateOffline] != 0 ||
		got[""][StateOffline] != 1 || len(got) != 3 {
		t.Fatalf("Count = %v", got)
	}
}
