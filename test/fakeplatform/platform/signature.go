package platform

// The platform's side of the request signature, written from the guide
// (§3.1.3, and the Java demo of §3.1.3.4), independently of the agent's
// signing package: the fake must catch an agent whose signing drifts from
// the guide, so it may not share its code.
//
// The demo puts commonIn and then req into a TreeMap (req wins on a clash;
// keys in Java String order, i.e. by UTF-16 code units), drops "sign", and
// walks the map: a null value is skipped; a base type (String, a number,
// Boolean) is written with toString(); anything else (a nested object or
// array) with fastjson's JSON.toJSONString(v, MapSortField); an empty
// rendering is skipped. Each written entry is followed by "&" whenever any
// entry follows it in the map, even one that is then skipped, so the text
// ends in "&" when the last key is empty. The fake reproduces that quirk:
// an agent that sends an empty trailing field fails with 21006 here, as it
// would against a platform running the demo's code.
//
// sign = Base64(SHA-256(text + appSecret)).

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf16"
)

// signingText builds the guide's 签名原文 of a request.
func signingText(commonIn, req map[string]any) string {
	all := map[string]any{}
	for k, v := range commonIn {
		all[k] = v
	}
	for k, v := range req {
		all[k] = v
	}
	delete(all, "sign")
	keys := javaSorted(all)
	var b strings.Builder
	for i, k := range keys {
		v := all[k]
		if v == nil {
			continue
		}
		text := javaText(v)
		if text == "" {
			continue
		}
		b.WriteString(k + "=" + text)
		if i < len(keys)-1 {
			b.WriteByte('&')
		}
	}
	return b.String()
}

// signature is Base64(SHA-256(text + secret)).
func signature(text, secret string) string {
	sum := sha256.Sum256([]byte(text + secret))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// javaSorted returns m's keys in Java String.compareTo order.
func javaSorted(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
	})
	return keys
}

// javaText renders a top-level value: a base type with toString(), an
// object or array as fastjson writes it.
func javaText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	var b strings.Builder
	fastJSON(&b, v)
	return b.String()
}

// fastJSON writes v as fastjson's toJSONString with MapSortField does:
// compact, object keys sorted, null object members left out, null array
// elements kept, no HTML escaping, non-ASCII characters as they are.
func fastJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		fastString(b, x)
	case json.Number:
		b.WriteString(x.String())
	case bool:
		b.WriteString(javaText(x))
	case map[string]any:
		b.WriteByte('{')
		first := true
		for _, k := range javaSorted(x) {
			if x[k] == nil {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			fastString(b, k)
			b.WriteByte(':')
			fastJSON(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			fastJSON(b, e)
		}
		b.WriteByte(']')
	}
}

// fastString writes a JSON string: quote, backslash and control
// characters escaped, everything else as is.
func fastString(b *strings.Builder, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"', r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
