package card

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// An Error's JSON form (the gateway wire) round-trips every field but the
// cause, and a class name from a newer version reads as Retryable.
func TestErrorJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, CST)
	for c := Retryable; c <= Duplicate; c++ {
		in := Error{API: "reportHISData", Class: c, Code: 10034, Msg: "调用次数限制 <&>", RequestID: "RID", Unknown: true, Unavailable: true, RetryAfter: at}
		b, err := json.Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		var out Error
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if out.API != in.API || out.Class != c || out.Code != in.Code || out.Msg != in.Msg || out.RequestID != in.RequestID ||
			!out.Unknown || !out.Unavailable || !out.RetryAfter.Equal(at) {
			t.Errorf("%s: %s → %+v", c, b, out)
		}
	}
	var e Error
	if err := json.Unmarshal([]byte(`{"api":"x","class":"quota_exceeded","message":"m"}`), &e); err != nil || e.Class != Retryable {
		t.Fatalf("unknown class: %+v %v", e, err)
	}
	b, _ := json.Marshal(Error{Class: Rejected, Msg: "bad", Err: errors.New("the cause stays here")})
	if string(b) != `{"api":"","class":"rejected","message":"bad"}` {
		t.Fatalf("minimal form: %s", b)
	}
}
