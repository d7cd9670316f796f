package verify

import (
	"context"
	"net/http"
	"testing"
	"time"

	"scanagent/internal/card"
)

// The gateway client decodes the wire as gateways of every version write
// it (bodies as internal/gateway's testdata/wire.golden records them).
func TestGatewayClientDecodesWire(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   *card.Error // nil: success
		id     card.Identity
	}{
		{name: "identity", status: 200,
			body: `{"result":{"name":"龙小英","idType":"01","idNumber":"432901198810228888","address":"厦门市<思明区>&\"湖滨\"","qrCodeText":"OK:1","kind":"ehc_static","verified":true}}` + "\n",
			id:   card.Identity{Name: "龙小英", IDType: "01", IDNumber: "432901198810228888", Address: `厦门市<思明区>&"湖滨"`, QRCodeText: "OK:1"}},
		{name: "rate limited", status: 200,
			body: `{"error":{"api":"reportHISData","class":"rate_limited","code":10034,"message":"接口调用次数限制","requestId":"RATE","retryAfter":"2026-11-24T00:00:00+08:00"}}`,
			want: &card.Error{API: "reportHISData", Class: card.RateLimited, Code: 10034, Msg: "接口调用次数限制", RequestID: "RATE", RetryAfter: time.Date(2026, 11, 24, 0, 0, 0, 0, card.CST)}},
		{name: "unknown outcome", status: 200,
			body: `{"error":{"api":"gateway","class":"retryable","message":"context deadline exceeded","unknown":true,"unavailable":true}}`,
			want: &card.Error{API: "gateway", Class: card.Retryable, Msg: "context deadline exceeded", Unknown: true, Unavailable: true}},
		{name: "escaped message", status: 200,
			body: `{"error":{"api":"getHealthCardByQRCode","class":"rejected","code":-10019,"message":"二维码无效 \u003ca\u0026b\u003e","requestId":"R"}}`,
			want: &card.Error{API: "getHealthCardByQRCode", Class: card.Rejected, Code: -10019, Msg: "二维码无效 <a&b>", RequestID: "R"}},
		{name: "class of a later version", status: 200,
			body: `{"error":{"api":"reportHISData","class":"quota_exhausted","message":"x"}}`,
			want: &card.Error{API: "reportHISData", Class: card.Retryable, Msg: "x"}},
		{name: "bad request", status: 400,
			body: `{"error":{"api":"","class":"rejected","message":"bad request: json: unknown field \"bogus\""}}`,
			want: &card.Error{Class: card.Rejected, Msg: `bad request: json: unknown field "bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := stubPlatform(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			})
			id, err := stubGateway(srv.URL, newClock()).Verify(context.Background(), card.Request{Kind: card.KindEHCStatic, Text: "OK:1"})
			if tt.want == nil {
				if err != nil || id != tt.id {
					t.Fatalf("got %+v %v, want %+v", id, err, tt.id)
				}
				return
			}
			e, ok := card.AsError(err)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			if !e.RetryAfter.Equal(tt.want.RetryAfter) {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.want.RetryAfter)
			}
			got, want := *e, *tt.want
			got.RetryAfter, want.RetryAfter = time.Time{}, time.Time{}
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}
