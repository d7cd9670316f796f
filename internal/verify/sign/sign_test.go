package sign

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

const (
	guideSecret = "8c8e763f443ef983ac33aef1c7085cfb"
	guideText   = "appId=a1a2e0bde41574ad8ea9a4bb58022oop&hospitalId=90003&requestId=DB4D975748A84309977EA25224C0F5CF&timestamp=1525392000"
	guideSign   = "TsccMUMTHfOiEovR2hMlRXcQqctRFmPbpPIZdxXCJ/o="
)

func TestGoldenVector(t *testing.T) {
	body := `{"commonIn":{"appToken":"","requestId":"DB4D975748A84309977EA25224C0F5CF","hospitalId":"90003","timestamp":"1525392000","sign":"ignored"},"req":{"appId":"a1a2e0bde41574ad8ea9a4bb58022oop"}}`
	b, err := ParseBody([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	text := Text(b.CommonIn, b.Req)
	if text != guideText {
		t.Fatalf("text =\n%s\nwant\n%s", text, guideText)
	}
	if got := Sign(text, guideSecret); got != guideSign {
		t.Fatalf("sign = %s, want %s", got, guideSign)
	}
	if got := Sign(text, guideSecret[1:]); got == guideSign {
		t.Fatal("secret without its first character gives the same signature")
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"sorted byte order upper first", `{"commonIn":{"b":"2","B":"1","a":"0"}}`, "B=1&a=0&b=2"},
		{"drops empty and null", `{"commonIn":{"a":"","b":null,"c":"x"},"req":{"d":""}}`, "c=x"},
		{"trailing empty not followed by &", `{"commonIn":{"a":"1","z":""}}`, "a=1"},
		{"req wins on clash", `{"commonIn":{"hospitalId":"1"},"req":{"hospitalId":"2"}}`, "hospitalId=2"},
		{"numbers keep their text", `{"req":{"n":1.0,"m":10,"e":1e3,"neg":-0.50}}`, "e=1e3&m=10&n=1.0&neg=-0.50"},
		{"booleans", `{"req":{"t":true,"f":false}}`, "f=false&t=true"},
		{"chinese raw", `{"req":{"name":"龙小英","useCityName":"厦门市"}}`, "name=龙小英&useCityName=厦门市"},
		{"html not escaped at top", `{"req":{"q":"<a&b>"}}`, "q=<a&b>"},
		{"nested sorted compact", `{"req":{"o":{"z":1,"a":"x","m":{"y":true,"b":null}}}}`, `o={"a":"x","m":{"y":true},"z":1}`},
		{"nested html and chinese", `{"req":{"o":{"t":"<龙&英>"}}}`, `o={"t":"<龙&英>"}`},
		{"nested empty string stays", `{"req":{"o":{"e":"","n":null}}}`, `o={"e":""}`},
		{"array null kept", `{"req":{"a":[1,null,"x",{"b":null,"a":2}]}}`, `a=[1,null,"x",{"a":2}]`},
		{"nested quotes escaped", `{"req":{"o":{"q":"a\"b\\c\nd"}}}`, `o={"q":"a\"b\\c\nd"}`},
		{"top string quotes raw", `{"req":{"q":"a\"b"}}`, `q=a"b`},
		{"empty object and array", `{"req":{"o":{},"a":[]}}`, `a=[]&o={}`},
		{"sign dropped from req", `{"req":{"sign":"x","a":"1"}}`, "a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := Text(b.CommonIn, b.Req); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseBodyErrors(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"commonIn":[1]}`, `{}`, `{"commonIn":{}} x`, `{"req":"s"}`, `{"commonIn":{`} {
		if _, err := ParseBody([]byte(in)); err == nil {
			t.Errorf("ParseBody(%q) succeeded", in)
		}
	}
}

// referenceText is an independent implementation: it canonicalises nested
// values by pruning nulls and letting encoding/json (with HTML escaping off)
// render them, where Text walks and writes them itself.
func referenceText(commonIn, req map[string]any) string {
	flat := map[string]any{}
	for _, m := range []map[string]any{commonIn, req} {
		for k, v := range m {
			flat[k] = v
		}
	}
	var parts []string
	for k, v := range flat {
		if k == "sign" || v == nil || v == "" {
			continue
		}
		var s string
		if str, ok := v.(string); ok {
			s = str
		} else {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(prune(v)); err != nil {
				panic(err)
			}
			s = strings.TrimSuffix(buf.String(), "\n")
			// encoding/json escapes U+2028/2029 even with HTML escaping off;
			// fastjson writes them raw.
			s = strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(s)
		}
		parts = append(parts, k+"="+s)
	}
	sort.Slice(parts, func(i, j int) bool { return key(parts[i]) < key(parts[j]) })
	return strings.Join(parts, "&")
}

func key(p string) string { return p[:strings.IndexByte(p, '=')] }

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			if e != nil {
				m[k] = prune(e)
			}
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e)
		}
		return out
	}
	return v
}

func FuzzText(f *testing.F) {
	f.Add(`{"commonIn":{"appToken":"","requestId":"DB4D","hospitalId":"90003","timestamp":"1525392000"},"req":{"appId":"a1"}}`)
	f.Add(`{"req":{"o":{"t":"<龙&英>","n":null,"a":[1,null,{"z":"\u2028"}]},"x":1.50}}`)
	f.Add(`{"req":{"q":"a\"b\\c\n\u0001\b\f","é":"ü"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		b, err := ParseBody([]byte(body))
		if err != nil {
			return
		}
		for k := range b.CommonIn {
			if strings.Contains(k, "=") {
				return // keys with '=' make the reference's split ambiguous
			}
		}
		for k := range b.Req {
			if strings.Contains(k, "=") {
				return
			}
		}
		got, want := Text(b.CommonIn, b.Req), referenceText(b.CommonIn, b.Req)
		if got != want {
			t.Fatalf("Text and reference differ\n got  %q\n want %q", got, want)
		}
	})
}
