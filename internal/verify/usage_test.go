package verify

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// verifyQRCode is the usage record of a dynamic code's visit (guide
// §3.2.11): the scan's medicalStep, useScene and useChannel travel with it,
// directly and through a gateway, and the visit is counted once.
func TestVerifyQRCodeCarriesScanOverrides(t *testing.T) {
	dyn := platform.BuiltinCards()[0].DynamicQRCodeText
	tests := []struct {
		name string
		req  card.Request
		want map[string]string // "" = absent from the request
	}{
		{"overrides", card.Request{MedicalStep: "0101051", UseScene: "0101051", UseChannel: "0200"},
			map[string]string{"medicalStep": "0101051", "useScene": "0101051", "useChannel": "0200"}},
		{"defaults", card.Request{},
			map[string]string{"medicalStep": "010101", "useScene": "", "useChannel": ""}},
	}
	for name, newClient := range implementations() {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t)
				r := tt.req
				r.Kind, r.Text = card.KindEHCDynamic, dyn
				if _, err := newClient(t, e).Verify(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				st := e.fake.Stats()
				if len(st.Verifications) != 1 {
					t.Fatalf("verifications = %+v", st.Verifications)
				}
				got := st.Verifications[0].Req
				for k, v := range tt.want {
					if _, present := got[k]; got[k] != v || (v == "" && present) {
						t.Errorf("%s = %q (present %v), want %q", k, got[k], present, v)
					}
				}
				if st.Usage[dyn] != 1 || st.UsageTotals[platform.UsageVerifyDynamic] != 1 || len(st.Reports) != 0 {
					t.Fatalf("usage %v totals %v reports %d: want the visit counted once, by verifyQRCode", st.Usage, st.UsageTotals, len(st.Reports))
				}
			})
		}
	}
}

// The gateway server takes the new fields under its strict decoding.
func TestGatewayAcceptsScanOverrides(t *testing.T) {
	var got card.Request
	srv := startGateway(t, upstreamFunc(func(ctx context.Context, r card.Request) (card.Identity, error) {
		got = r
		return card.Identity{QRCodeText: r.Text}, nil
	}))
	for body, want := range map[string]int{
		`{"kind":"ehc_dynamic","qrCodeText":"x","medicalStep":"010102","useScene":"010102","useChannel":"0100"}`: 200,
		`{"kind":"ehc_dynamic","qrCodeText":"x","usescene2":"010102"}`:                                           400,
	} {
		req, _ := http.NewRequest("POST", srv.URL+gwVerify, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: HTTP %d, want %d", body, resp.StatusCode, want)
		}
	}
	if got.UseScene != "010102" || got.UseChannel != "0100" || got.MedicalStep != "010102" {
		t.Fatalf("upstream got %+v", got)
	}
}
