package visit

import (
	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/mask"
)

// logVisit writes one masked line per visit.
func (p *Pipeline) logVisit(v card.Visit) {
	ev := p.o.Log.Info()
	if v.Error != nil {
		if v.Identity == nil {
			ev = p.o.Log.Warn()
		}
		ev = ev.Str("error", v.Error.Code).Str("reason", v.Error.Message)
	}
	ev = ev.Str("scan", v.ID).Str("source", v.Source).Str("kind", string(v.Kind)).Bool("verified", v.Verified).Float64("latencyMs", v.Latency)
	if v.Offline {
		ev = ev.Bool("offline", true)
	}
	if id := v.Identity; id != nil {
		d := zerolog.Dict()
		for _, f := range []struct{ k, v string }{
			{"name", mask.Name(id.Name)}, {"idNumber", mask.ID(id.IDNumber)}, {"phone", mask.Phone(id.Phone)},
			{"qrCodeText", mask.QR(id.QRCodeText)}, {"level", id.Level},
		} {
			if f.v != "" {
				d = d.Str(f.k, f.v)
			}
		}
		ev = ev.Dict("identity", d)
	}
	ev.Msg("scan")
}
