package verify

import (
	"context"
	"net/http"
	"testing"

	"scanagent/internal/card"
)

// An HTTP error status does not prove the platform did not process the
// request: a proxy or gateway in front of it may answer 429 or 503 after
// forwarding. Only the platform's own JSON answer with a resultCode of the
// guide's table is definite.
func TestHTTPStatusOutcome(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		class   card.Class
		code    int
		unknown bool
	}{
		{"429 from a proxy", 429, "Too Many Requests", card.Retryable, 0, true},
		{"503 from a proxy", 503, "<html>Service Unavailable</html>", card.Retryable, 0, true},
		{"502", 502, "Bad Gateway", card.Retryable, 0, true},
		{"504", 504, "", card.Retryable, 0, true},
		{"408", 408, "", card.Retryable, 0, true},
		{"503 platform rate limit", 503, `{"commonOut":{"resultCode":10034,"errMsg":"接口调用次数限制"}}`, card.RateLimited, 10034, false},
		{"429 platform 21007", 429, `{"commonOut":{"resultCode":21007,"errMsg":"接口调用被限制"}}`, card.RateLimited, 21007, false},
		{"503 platform fault code", 503, `{"commonOut":{"resultCode":-1,"errMsg":"卡管平台异常"}}`, card.Retryable, -1, false},
		{"503 platform duplicate", 503, `{"commonOut":{"resultCode":10054,"errMsg":"重复请求"}}`, card.Duplicate, 10054, false},
		{"503 code not in the guide", 503, `{"commonOut":{"resultCode":503}}`, card.Retryable, 0, true},
		{"503 resultCode 0", 503, `{"commonOut":{"resultCode":0}}`, card.Retryable, 0, true},
		{"503 another request's answer", 503, `{"commonOut":{"requestId":"OTHER","resultCode":10034}}`, card.Retryable, 0, true},
		{"404", 404, "not found", card.Fatal, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := stubPlatform(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			})
			rid := card.NewRequestID()
			err := stubEHC(srv.URL, newClock()).ReportHISData(context.Background(), card.Report{Scene: "010101"}, rid)
			e := wantClass(t, err, tt.class, tt.code)
			if e.Code != tt.code || e.Unknown != tt.unknown || e.RequestID != rid {
				t.Fatalf("err = %+v, want code %d unknown %v for requestId %s", e, tt.code, tt.unknown, rid)
			}
		})
	}
}

// The same for a terminal's gateway client: the gateway answers 200 or
// 400; anything else between may have forwarded the request.
func TestGatewayHTTPStatusOutcome(t *testing.T) {
	tests := []struct {
		status  int
		class   card.Class
		unknown bool
	}{
		{429, card.Retryable, true},
		{503, card.Retryable, true},
		{502, card.Retryable, true},
		{404, card.Fatal, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := stubPlatform(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
			err := stubGateway(srv.URL, newClock()).ReportHISData(context.Background(), card.Report{}, card.NewRequestID())
			if e := wantClass(t, err, tt.class, 0); e.Unknown != tt.unknown {
				t.Fatalf("err = %+v, want unknown %v", e, tt.unknown)
			}
		})
	}
}
