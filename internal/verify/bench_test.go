package verify

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// BenchmarkVerifyStatic is a full verification round trip (sign, POST,
// decode, classify) against the fake on loopback. Compare it with
// BenchmarkRawPost, a bare net/http POST of the same body to the same fake
// in the same run: the difference is the agent's overhead.
func BenchmarkVerifyStatic(b *testing.B) {
	e := newEnv(b)
	c := e.direct()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	if _, err := c.Verify(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Verify(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPost(b *testing.B) {
	e := newEnv(b)
	url := e.srv.URL + platform.APIPrefix + "getHealthCardByQRCode"
	body := []byte(`{"commonIn":{"appToken":"x","requestId":"R","hospitalId":"90003","timestamp":"1","sign":"s"},"req":{"qrCodeText":"` + platform.BuiltinCards()[0].QRCodeText + `"}}`)
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
	}
}
