package visit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"scanagent/internal/card"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
)

// What a queued report's delivery attempt means, for each row of SPEC §4's
// result-code table: the platform's resultCode is classified by the
// platform client (verify.Classify), and the policy decides what the
// outbox does with the record and its requestId.
func TestDecideSPEC4(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, card.CST)
	platform := func(code int) error {
		return &card.Error{API: verify.APIReportHISData, Class: verify.Classify(code), Code: code, Msg: "x"}
	}
	tests := []struct {
		row     string
		err     error
		outcome visit.Outcome
		unknown bool
	}{
		{"0 ok", nil, visit.Delivered, false},
		{"21003 appToken 超时: token dropped, requestId spent, retry with a new one", platform(21003), visit.Retry, false},
		{"21004 非法 appToken", platform(21004), visit.Retry, false},
		{"21006 签名错误: configuration, dead letter", platform(21006), visit.Dead, false},
		{"21002 非法 appId/appSecret", platform(21002), visit.Dead, false},
		{"21005 无权操作该医院", platform(21005), visit.Dead, false},
		{"20000 鉴权失败", platform(20000), visit.Dead, false},
		{"10034 调用次数限制: pause", platform(10034), visit.Pause, false},
		{"21007 接口调用被限制: pause", platform(21007), visit.Pause, false},
		{"10054 重复请求 after an unknown outcome: delivered", platform(10054), visit.Duplicate, false},
		{"10008 bad code: dead letter", platform(10008), visit.Dead, false},
		{"-10019 card frozen", platform(-10019), visit.Dead, false},
		{"1 platform fault: retry", platform(1), visit.Retry, false},
		{"-1 platform fault", platform(-1), visit.Retry, false},
		{"-110086 platform fault", platform(-110086), visit.Retry, false},
		{"timeout after send: retry with the same requestId", &card.Error{Class: card.Retryable, Unknown: true, Unavailable: true}, visit.Retry, true},
		{"connection refused, never sent", &card.Error{Class: card.Retryable, Unavailable: true}, visit.Retry, false},
		{"context ended mid-call", context.Canceled, visit.Retry, true},
		{"any other error mid-call", errors.New("boom"), visit.Retry, true},
	}
	for _, tt := range tests {
		d := visit.Decide(tt.err, now, time.Hour)
		if d.Outcome != tt.outcome || d.Unknown != tt.unknown {
			t.Errorf("%s: %+v, want outcome %d unknown %v", tt.row, d, tt.outcome, tt.unknown)
		}
		if tt.err != nil && d.Reason == "" {
			t.Errorf("%s: no reason", tt.row)
		}
	}
	// A rate limit holds until the platform's time, or pause from now.
	until := now.Add(14 * time.Hour)
	if d := visit.Decide(&card.Error{Class: card.RateLimited, Code: 10034, RetryAfter: until}, now, time.Hour); !d.RetryAfter.Equal(until) {
		t.Errorf("10034 with a time: until %v, want %v", d.RetryAfter, until)
	}
	if d := visit.Decide(&card.Error{Class: card.RateLimited, Code: 21007}, now, time.Hour); !d.RetryAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("21007 without a time: until %v, want now+pause", d.RetryAfter)
	}
}
