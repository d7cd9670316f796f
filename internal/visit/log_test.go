package visit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/visit"
)

// No log line may carry unmasked personal data, a payload or a secret:
// the pipeline's own logging path runs every payload class, verified and
// refused, with a capturing logger.
func TestPipelineLogsMasked(t *testing.T) {
	p, _ := code.NewParser(code.Options{Custom: []code.CustomType{{Name: "hc", Pattern: `^HC[0-9]{10}$`}}})
	identity := card.Identity{Name: "龙小英", IDNumber: "432901198810228888", Phone: "18888882012", Address: "厦门市思明区", Level: "yellow"}
	var buf bytes.Buffer
	verifier := verifierFunc(func(_ context.Context, r card.Request) (card.Identity, error) {
		if strings.HasPrefix(r.Text, "D") {
			return card.Identity{}, &card.Error{API: "verifyQRCode", Class: card.Rejected, Code: 10008, Msg: "健康卡授权码不存在"}
		}
		id := identity
		id.QRCodeText = r.Text
		return id, nil
	})
	pipe := visit.New(visit.Options{Parser: p, EHC: verifier, SKM: verifier, Offline: visit.OfflineUnverified, Log: zerolog.New(&buf)})
	payloads := []string{
		"C7DA29340C1A4C2B9F6E0A12B34C5D6E:1",
		"D109C4C3B1E94A7F8E6D5C4B3A291807:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001",
		"432901198810228888",
		"https://jsstm.jszwfw.gov.cn/jkm/2?t=ABCDEF0123456789",
		"HC0012345678",
		"龙小英 432901198810228888 garbage",
	}
	for _, s := range payloads {
		pipe.Handle(context.Background(), card.Scan{Data: []byte(s), Source: "t", At: time.Now()})
	}
	out := buf.String()
	if n := strings.Count(out, `"message":"scan"`); n != len(payloads) {
		t.Fatalf("%d scan lines for %d payloads:\n%s", n, len(payloads), out)
	}
	for _, raw := range append(payloads, "龙小英", "432901198810228888", "18888882012", "厦门市思明区", "B0E3CC5F50EF5DC663F094C985B58312", "ABCDEF0123456789") {
		if strings.Contains(out, raw) {
			t.Errorf("log carries raw %q:\n%s", raw, out)
		}
	}
	if !strings.Contains(out, "4329**********8888") || !strings.Contains(out, "龙*英") {
		t.Errorf("masked values missing:\n%s", out)
	}
}
