package app

import (
	"github.com/rs/zerolog"

	"scanagent/internal/code"
	"scanagent/internal/mask"
)

// codeFields is how a recognised code appears in a log line: its kind and a
// masked form, never the payload itself.
func codeFields(c code.Code) *zerolog.Event {
	d := zerolog.Dict().Str("kind", string(c.Kind))
	switch c.Kind {
	case code.KindIDCard:
		d.Str("id", mask.ID(c.IDNumber))
	case code.KindCustom:
		d.Str("type", c.Type).Str("text", mask.QR(c.Text))
	default:
		d.Str("text", mask.QR(c.Text))
	}
	if c.OrgCode != "" {
		d.Str("org", c.OrgCode)
	}
	return d
}
