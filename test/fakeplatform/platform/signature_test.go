package platform

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func parse(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The signing text as the guide's §3.1.3 and its Java demo build it.
func TestSigningText(t *testing.T) {
	tests := []struct {
		name, commonIn, req, want string
	}{
		{"guide example (§3.1.3.2)",
			`{"appToken":"","requestId":"DB4D975748A84309977EA25224C0F5CF","hospitalId":"90003","timestamp":"1525392000","sign":"x"}`,
			`{"appId":"a1a2e0bde41574ad8ea9a4bb58022oop"}`,
			"appId=a1a2e0bde41574ad8ea9a4bb58022oop&hospitalId=90003&requestId=DB4D975748A84309977EA25224C0F5CF&timestamp=1525392000"},
		{"req wins a clash; numbers keep their text; booleans",
			`{"hospitalId":"1","timestamp":"1"}`, `{"hospitalId":"2","amount":1.0,"flag":true}`,
			"amount=1.0&flag=true&hospitalId=2&timestamp=1"},
		{"nested objects: keys sorted, nulls dropped, arrays keep null, no HTML escaping, UTF-8 as is",
			`{"a":"1"}`, `{"cardInfo":{"name":"张三","b":null,"a":"<x&y>","list":[null,1,"\"q\""],"e":""}}`,
			`a=1&cardInfo={"a":"<x&y>","e":"","list":[null,1,"\"q\""],"name":"张三"}`},
		{"empty and null values skipped",
			`{"a":"1","b":"","c":null}`, `{"d":"4"}`,
			"a=1&d=4"},
		{"Java demo quirk: an empty last key leaves a trailing &",
			`{"a":"1","timestamp":"2"}`, `{"useType":""}`,
			"a=1&timestamp=2&"},
		{"keys in Java (UTF-16) order: a supplementary character sorts before U+FF21",
			`{"Ａ":"1"}`, `{"😀":"2"}`,
			"😀=2&Ａ=1"},
		{"upper case before lower case",
			`{"b":"1","B":"2","a":"3"}`, `{}`,
			"B=2&a=3&b=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signingText(parse(t, tt.commonIn), parse(t, tt.req)); got != tt.want {
				t.Fatalf("signing text\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// The guide's signature example, with the printed digest's erratum (SPEC
// §2: the true digest has a lower-case L, "2hMlR").
func TestSignatureGolden(t *testing.T) {
	text := "appId=a1a2e0bde41574ad8ea9a4bb58022oop&hospitalId=90003&requestId=DB4D975748A84309977EA25224C0F5CF&timestamp=1525392000"
	if got := signature(text, "8c8e763f443ef983ac33aef1c7085cfb"); got != "TsccMUMTHfOiEovR2hMlRXcQqctRFmPbpPIZdxXCJ/o=" {
		t.Fatalf("sign = %s", got)
	}
}

// The fake refuses a wrong signature, and a body whose empty trailing
// field the sender left out of its signing text (the guide's demo signs
// it with a trailing &).
func TestSignatureChecked(t *testing.T) {
	c := newClient(t, Config{})
	c.fetchToken()
	if code := c.call("getHealthCardByQRCode", newID(), map[string]any{"qrCodeText": BuiltinCards()[0].QRCodeText}); code != 0 {
		t.Fatalf("well signed: %d", code)
	}
	// verifyQRCode's optional useType sorts last: sent empty, the demo's
	// text ends in "&"; a sender that drops it from the text is refused.
	req := verifyReq(BuiltinCards()[0].DynamicQRCodeText)
	req["useType"] = ""
	if code := c.call("verifyQRCode", newID(), req); code != 0 {
		t.Fatalf("empty trailing field signed as the demo does: %d", code)
	}
	c.mangle = func(text string) string { return strings.TrimSuffix(text, "&") }
	if code := c.call("verifyQRCode", newID(), req); code != 21006 {
		t.Fatalf("empty trailing field signed without the demo's &: %d, want 21006", code)
	}
	c.mangle = nil
	c.secret = "wrong"
	if code := c.call("getHealthCardByQRCode", newID(), map[string]any{"qrCodeText": BuiltinCards()[0].QRCodeText}); code != 21006 {
		t.Fatalf("wrong secret: %d, want 21006", code)
	}
}
