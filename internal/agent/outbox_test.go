package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"scanagent/internal/card"
	"scanagent/internal/queue"
)

// upstreamFunc answers every call with err.
type upstreamFunc struct{ err error }

func (u upstreamFunc) Verify(context.Context, card.Request) (card.Identity, error) {
	return card.Identity{}, u.err
}
func (u upstreamFunc) ReportHISData(context.Context, card.Report, string) error     { return u.err }
func (u upstreamFunc) BindCardRelation(context.Context, card.Binding, string) error { return u.err }

// A record that cannot be read, or of a kind the agent does not know, is a
// dead letter at once (retrying cannot help); a readable one gets the
// policy's verdict on the platform's answer.
func TestPlatformSender(t *testing.T) {
	tests := []struct {
		name, kind, payload string
		err                 error
		want                queue.Outcome
		reason              string
	}{
		{"report delivered", card.RecordReport, `{"qrCodeText":"x:1","scene":"010105"}`, nil, queue.Delivered, ""},
		{"binding refused", card.RecordBind, `{"patid":"P1","qrCodeText":"x:1"}`, &card.Error{Class: card.Rejected, Code: 10008}, queue.Dead, "10008"},
		{"report rate limited", card.RecordReport, `{}`, &card.Error{Class: card.RateLimited, Code: 10034}, queue.Pause, "10034"},
		{"unreadable report", card.RecordReport, `{"scene":`, nil, queue.Dead, "unreadable card.Report record"},
		{"unreadable binding", card.RecordBind, `[]`, nil, queue.Dead, "unreadable card.Binding record"},
		{"unknown kind", "other", `{}`, nil, queue.Dead, `unknown record kind "other"`},
	}
	for _, tt := range tests {
		s := platformSender{p: upstreamFunc{tt.err}, pause: time.Hour, now: time.Now}
		v := s.Send(context.Background(), tt.kind, []byte(tt.payload), "RID")
		if v.Outcome != tt.want || !strings.Contains(v.Reason, tt.reason) {
			t.Errorf("%s: %+v, want outcome %d with %q", tt.name, v, tt.want, tt.reason)
		}
	}
}
