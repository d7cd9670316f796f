package app

import (
	"context"

	"scanagent/internal/verify"
)

// router sends each kind of code to the verifier that knows it. ID numbers
// and custom codes are handed over as read (not verified online).
type router struct {
	ehc Verifier // nil when platform.mode = "off"
	skm Verifier // nil when skm is disabled
}

func (r *router) Verify(ctx context.Context, req verify.Request) (verify.Identity, error) {
	switch req.Kind {
	case verify.KindEHCStatic, verify.KindEHCDynamic:
		if r.ehc == nil {
			return verify.Identity{}, &verify.Error{API: "verify", Class: verify.Rejected, Msg: "e-Health Card codes are not accepted here (platform.mode = \"off\")"}
		}
		return r.ehc.Verify(ctx, req)
	case verify.KindSKM:
		if r.skm == nil {
			return verify.Identity{}, &verify.Error{API: "verify", Class: verify.Rejected, Msg: "Su Kang Codes are not accepted here ([skm] is not enabled)"}
		}
		return r.skm.Verify(ctx, req)
	case verify.KindIDCard:
		return verify.Identity{Kind: req.Kind, IDNumber: req.IDNumber, IDType: "01"}, nil
	default:
		return verify.Identity{Kind: req.Kind, QRCodeText: req.Text}, nil
	}
}
