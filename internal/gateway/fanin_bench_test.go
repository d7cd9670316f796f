package gateway

import (
	"context"
	"testing"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// BenchmarkGatewayFanIn is the gateway's capacity for sizing (README,
// "Running several gateways"): terminals' verifications of static codes,
// 64 at a time, through the terminal client, the gateway server and the
// direct client to the fake platform, all in this process on loopback.
// The platform answers at once, so this is the gateway's CPU cost per
// verification (the fake's included: an upper bound of that cost); a real
// platform's round trip adds waiting, not CPU.
func BenchmarkGatewayFanIn(b *testing.B) {
	ch := newChain(b)
	term := ch.terminal(b)
	text := platform.BuiltinCards()[1].QRCodeText
	if _, err := term.Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: text}); err != nil {
		b.Fatal(err) // the token, fetched once
	}
	b.SetParallelism(32) // × GOMAXPROCS terminals at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := term.Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: text}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}
