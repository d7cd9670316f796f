//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

func TestEveryPayloadClass(t *testing.T) {
	for _, baud := range []int{9600, 115200} {
		t.Run(fmt.Sprint(baud), func(t *testing.T) {
			s := newSetup(t, device.Options{Baud: baud, Suffix: "\r\n", AIM: ""})
			a := s.start(s.config(fmt.Sprintf("baud = %d\nsuffix = \"crlf\"", baud), ""))
			cards := platform.BuiltinCards()
			minted, _ := s.platform.MintDynamic(2)
			cases := []struct {
				payload  string
				kind     string
				verified bool
				name     string // masked
				errCode  string
			}{
				{cards[0].QRCodeText, "ehc_static", true, "张*", ""},
				{"]Q1" + cards[1].QRCodeText, "ehc_static", true, "龙*英", ""},
				{cards[0].DynamicQRCodeText, "ehc_dynamic", true, "张*", ""},
				{minted, "ehc_dynamic", true, "欧**娜", ""},
				{"432901198810228888", "id_card", false, "", ""},
				{"HC0012345678", "custom", false, "", ""},
				{"https://jsstm.jszwfw.gov.cn/jkm/2?t=RED0003", "skm", true, "欧**娜", ""},
				{strings.Repeat("E", 64) + ":1", "ehc_static", false, "", "platform_-10019"},
				{"101102199809089988", "", false, "", "bad_checksum"},
				{"garbage!", "", false, "", "unknown"},
			}
			for _, c := range cases {
				if err := s.dev.Type([]byte(c.payload)); err != nil {
					t.Fatal(err)
				}
				e := a.waitFor("scan", 5*time.Second)
				if e.str("kind") != c.kind || e["verified"] != c.verified || e.str("error") != c.errCode {
					t.Fatalf("%q: outcome %v", c.payload, e)
				}
				if c.name != "" {
					if got := e.identity()["name"]; got != c.name {
						t.Fatalf("%q: masked name %v, want %s", c.payload, got, c.name)
					}
				}
			}
			// Every static e-Health Card scan that reached the HIS was
			// reported through the outbox (2 verified codes; the unknown card
			// not); the dynamic ones were counted by verifyQRCode alone.
			waitUntil(t, "usage reports delivered", func() bool { return len(s.platform.Stats().Reports) == 2 })
			for _, r := range s.platform.Stats().Reports {
				if r.Req["scene"] != "010101" || r.Req["cardChannel"] != "0100" || r.Req["cardType"] != "11" || r.Req["qrCodeText"] == "" {
					t.Fatalf("report %+v", r)
				}
			}
			if e := a.log(); strings.Contains(e, "龙小英") || strings.Contains(e, "432901198810228888") || strings.Contains(e, cards[0].QRCodeText) || strings.Contains(e, platform.Defaults().AppSecret) {
				t.Fatal("the agent log carries unmasked personal data or the secret")
			}
			a.stop(syscall.SIGTERM, 6*time.Second)
			if a.err != nil {
				t.Fatalf("exit: %v", a.err)
			}
		})
	}
}

func TestGapFraming(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: ""})
	a := s.start(s.config("baud = 115200\nsuffix = \"none\"\ngap = \"40ms\"", ""))
	s.dev.Type([]byte("432901198810228888"))
	if e := a.waitFor("scan", 3*time.Second); e.str("kind") != "id_card" {
		t.Fatalf("outcome %v", e)
	}
	time.Sleep(100 * time.Millisecond)
	s.dev.Type([]byte("HC0012345678"))
	if e := a.waitFor("scan", 3*time.Second); e.str("kind") != "custom" {
		t.Fatalf("outcome %v", e)
	}
}

func TestHeldTriggerRepeatsSuppressed(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r", Repeat: 4, Every: 200 * time.Millisecond})
	a := s.start(s.config("baud = 115200", ""))
	s.dev.Type([]byte("432901198810228888"))
	a.waitFor("scan", 3*time.Second)
	a.noScan(500 * time.Millisecond)
	a.stop(syscall.SIGINT, 6*time.Second)
	if !strings.Contains(a.log(), `"suppressed":4`) {
		t.Fatalf("stop line does not count 4 suppressed repeats:\n%s", a.log())
	}
}

func TestUnplugReplug(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	a := s.start(s.config("baud = 115200", ""))
	for i := 0; i < 3; i++ {
		s.dev.Unplug()
		a.waitFor("scanner disconnected; reconnecting", 3*time.Second)
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		s.dev.Replug()
		a.waitFor("scanner connected", 3*time.Second)
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("reconnected after %v", d)
		}
		s.dev.Type([]byte("HC001234567" + fmt.Sprint(i)))
		if e := a.waitFor("scan", 3*time.Second); e.str("kind") != "custom" {
			t.Fatalf("after replug: %v", e)
		}
	}
}

func TestOfflinePolicy(t *testing.T) {
	for _, policy := range []string{"refuse", "unverified"} {
		t.Run(policy, func(t *testing.T) {
			s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
			a := s.start(s.config("baud = 115200", fmt.Sprintf("offline = %q", policy)))
			s.platform.SetFaults(platform.Faults{Reset: true})
			cards := platform.BuiltinCards()
			s.dev.Type([]byte(cards[0].QRCodeText))
			e := a.waitFor("scan", 5*time.Second)
			if e.str("error") != "offline" || (policy == "unverified") != (e["offline"] == true) {
				t.Fatalf("static offline under %s: %v", policy, e)
			}
			s.dev.Type([]byte(cards[1].DynamicQRCodeText))
			e = a.waitFor("scan", 5*time.Second)
			if e.str("error") != "offline" || e["offline"] == true || !strings.Contains(e.str("reason"), "dynamic code cannot be verified offline") {
				t.Fatalf("dynamic offline: %v", e)
			}
			s.dev.Type([]byte("432901198810228888"))
			if e := a.waitFor("scan", 5*time.Second); e.str("kind") != "id_card" || e.str("error") != "" {
				t.Fatalf("ID number offline: %v", e)
			}
		})
	}
}

func TestConfigErrorsExit(t *testing.T) {
	s := newSetup(t, device.Options{})
	path := s.config("baud = 12", "")
	out, err := execOut(binary, "run", "-c", path)
	if err == nil || !strings.Contains(out, "source[0].baud") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
}
