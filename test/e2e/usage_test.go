//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// Every visit is counted exactly once on a platform that checks the
// guide's fields strictly and answers 10054 to any reused requestId: a
// dynamic code by verifyQRCode alone, a static code by the agent's one
// reportHISData, an ID number by the HIS's one report. Reporting a scan
// again, or reporting a dynamic code, adds nothing.
func TestOneCountPerVisit(t *testing.T) {
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	s.his = "[his.api]\nlisten = \"127.0.0.1:0\""
	a := s.start(s.config("baud = 115200", ""))
	static := platform.BuiltinCards()[1].QRCodeText
	dynamic, err := s.platform.MintDynamic(0)
	if err != nil {
		t.Fatal(err)
	}
	const id = "432901198810228888"
	scanIDs := map[string]string{}
	for kind, payload := range map[string]string{"ehc_static": static, "ehc_dynamic": dynamic, "id_card": id} {
		s.dev.Type([]byte(payload))
		e := a.waitFor("scan", 5*time.Second)
		if e.str("kind") != kind || e.str("error") != "" {
			t.Fatalf("%s: %v", kind, e)
		}
		scanIDs[kind] = e.str("scan")
	}
	api := "http://" + a.apiAddr()
	post := func(body string) int {
		resp, err := http.Post(api+"/v1/usage", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The HIS reports the ID card (twice: a retry), the static scan the
	// agent already reported, and tries the dynamic one.
	idBody := fmt.Sprintf(`{"scanId":%q,"name":"龙小英","scene":"010105","cardType":"01"}`, scanIDs["id_card"])
	for i := 0; i < 2; i++ {
		if c := post(idBody); c != http.StatusAccepted {
			t.Fatalf("id card usage: %d", c)
		}
	}
	if c := post(fmt.Sprintf(`{"scanId":%q,"scene":"010105"}`, scanIDs["ehc_static"])); c != http.StatusAccepted {
		t.Fatalf("static usage again: %d", c)
	}
	if c := post(fmt.Sprintf(`{"scanId":%q,"scene":"010105"}`, scanIDs["ehc_dynamic"])); c != http.StatusConflict {
		t.Fatalf("dynamic usage: %d, want 409", c)
	}
	waitUntil(t, "reports delivered", func() bool {
		st := s.platform.Stats()
		return st.UsageTotals[platform.UsageReportStatic] >= 1 && st.UsageTotals[platform.UsageReportID] >= 1
	})
	time.Sleep(500 * time.Millisecond) // anything extra would arrive now
	st := s.platform.Stats()
	want := map[string]int{platform.UsageVerifyDynamic: 1, platform.UsageReportStatic: 1, platform.UsageReportID: 1, platform.UsageReportDynamic: 0}
	for k, n := range want {
		if st.UsageTotals[k] != n {
			t.Errorf("usage %s = %d, want %d (all: %v)", k, st.UsageTotals[k], n, st.UsageTotals)
		}
	}
	for _, key := range []string{static, dynamic, id} {
		if st.Usage[key] != 1 {
			t.Errorf("visits of %s… counted %d times, want 1", key[:8], st.Usage[key])
		}
	}
	for _, v := range st.Verifications {
		if v.Req["medicalStep"] != "010101" || v.Req["useScene"] != "010101" || v.Req["useChannel"] != "0100" {
			t.Errorf("verifyQRCode without the source's scene and channel: %v", v.Req)
		}
	}
}
