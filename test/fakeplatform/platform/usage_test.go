package platform

import (
	"encoding/json"
	"net/http"
	"testing"
)

// The fake counts usage per visit as the platform does: an accepted
// verifyQRCode is one visit of its dynamic code, an accepted reportHISData
// one visit of its code or ID number; refused calls count nothing.
func TestUsagePerVisit(t *testing.T) {
	c := newClient(t, Config{})
	cards := BuiltinCards()
	minted, _ := c.fake.MintDynamic(2)
	dynReport := staticReport()
	dynReport["qrCodeText"] = cards[1].DynamicQRCodeText
	calls := []struct {
		api  string
		req  map[string]any
		code int
	}{
		{"verifyQRCode", verifyReq(cards[0].DynamicQRCodeText), 0},
		{"verifyQRCode", verifyReq(minted), 0},
		{"verifyQRCode", verifyReq(minted), 0}, // a second visit with the same code
		{"verifyQRCode", verifyReq(cards[0].QRCodeText), 10009},
		{"reportHISData", staticReport(), 0},
		{"reportHISData", idReport(), 0},
		{"reportHISData", dynReport, 0}, // a dynamic code reported: counted again
		{"getHealthCardByQRCode", map[string]any{"qrCodeText": cards[0].QRCodeText}, 0},
		{"bindCardRelation", map[string]any{"patid": "P1", "qrCodeText": cards[0].QRCodeText}, 0},
	}
	for _, call := range calls {
		if code := c.call(call.api, newID(), call.req); code != call.code {
			t.Fatalf("%s %v: %d, want %d", call.api, call.req, code, call.code)
		}
	}
	resp, err := http.Get(c.url + "/_fake/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	wantUsage := map[string]int{cards[0].DynamicQRCodeText: 1, minted: 2, cards[0].QRCodeText: 1, "432901198810228888": 1, cards[1].DynamicQRCodeText: 1}
	wantTotals := map[string]int{UsageVerifyDynamic: 3, UsageReportStatic: 1, UsageReportID: 1, UsageReportDynamic: 1}
	for k, n := range wantUsage {
		if st.Usage[k] != n {
			t.Errorf("usage[%s] = %d, want %d", k, st.Usage[k], n)
		}
	}
	for k, n := range wantTotals {
		if st.UsageTotals[k] != n {
			t.Errorf("usageTotals[%s] = %d, want %d", k, st.UsageTotals[k], n)
		}
	}
	if len(st.Usage) != len(wantUsage) || len(st.UsageTotals) != len(wantTotals) || len(st.Verifications) != 3 || len(st.Reports) != 4 {
		t.Fatalf("stats = %+v", st)
	}
}

// With Strict, the guide's conditional fields and code tables are
// enforced; without it they are not.
func TestStrict(t *testing.T) {
	with := func(base map[string]any, k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	dyn := BuiltinCards()[0].DynamicQRCodeText
	tests := []struct {
		name   string
		api    string
		req    map[string]any
		strict int
	}{
		{"valid static report", "reportHISData", staticReport(), 0},
		{"valid ID report", "reportHISData", idReport(), 0},
		{"挂号 without department", "reportHISData", with(staticReport(), "department", nil), 10042},
		{"unknown scene", "reportHISData", with(staticReport(), "scene", "999999"), 10042},
		{"unknown card type", "reportHISData", with(idReport(), "cardType", "42"), 10042},
		{"ID report without name", "reportHISData", with(idReport(), "name", nil), 10013},
		{"ID report without ID number", "reportHISData", with(idReport(), "idCardNumber", nil), 10014},
		{"ID report with the example's idCard", "reportHISData", with(with(idReport(), "idCardNumber", nil), "idCard", "432901198810228888"), 0},
		{"verify with a valid useScene and useChannel", "verifyQRCode", with(with(verifyReq(dyn), "useScene", "010101"), "useChannel", "0200"), 0},
		{"verify with an unknown medicalStep", "verifyQRCode", with(verifyReq(dyn), "medicalStep", "999999"), 10042},
		{"verify with an unknown useChannel", "verifyQRCode", with(verifyReq(dyn), "useChannel", "01"), 10042},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, strict := range []bool{false, true} {
				c := newClient(t, Config{Strict: strict})
				want := 0
				if strict {
					want = tt.strict
				}
				if code := c.call(tt.api, newID(), tt.req); code != want {
					t.Errorf("strict=%v: %d, want %d", strict, code, want)
				}
			}
		})
	}
}
