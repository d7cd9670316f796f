// Package sign implements the e-Health Card open platform request signature
// (guide §3.1.3, SPEC §2): the signing text built from commonIn and req, and
// sign = Base64(SHA-256(signingText + appSecret)). It is pure and shared by
// the platform client, the gateway and the fake platform.
package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Text builds the signing text of a request from its commonIn and req
// objects: every key of both in one flat map (req wins on a clash), minus
// "sign", minus null and "" values, sorted by byte order, rendered as
// k=v joined by &.
func Text(commonIn, req map[string]any) string {
	flat := make(map[string]any, len(commonIn)+len(req))
	for k, v := range commonIn {
		flat[k] = v
	}
	for k, v := range req {
		flat[k] = v
	}
	delete(flat, "sign")
	keys := make([]string, 0, len(flat))
	for k, v := range flat {
		if v == nil {
			continue
		}
		if s, ok := v.(string); ok && s == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		if s, ok := flat[k].(string); ok {
			b.WriteString(s)
		} else {
			writeJSON(&b, flat[k])
		}
	}
	return b.String()
}

// Sign returns Base64(SHA-256(text + secret)).
func Sign(text, secret string) string {
	h := sha256.New()
	h.Write([]byte(text))
	h.Write([]byte(secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Body is a platform request body as it travels on the wire.
type Body struct {
	CommonIn map[string]any `json:"commonIn"`
	Req      map[string]any `json:"req"`
}

// ParseBody decodes a full request body {"commonIn":{...},"req":{...}},
// keeping numbers as their original text.
func ParseBody(data []byte) (Body, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return Body{}, fmt.Errorf("request body is not a JSON object: %w", err)
	}
	if dec.More() {
		return Body{}, errors.New("request body has trailing data after the JSON object")
	}
	var b Body
	for name, dst := range map[string]*map[string]any{"commonIn": &b.CommonIn, "req": &b.Req} {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			return Body{}, fmt.Errorf("%s is not a JSON object: %w", name, err)
		}
	}
	if b.CommonIn == nil && b.Req == nil {
		return Body{}, errors.New(`request body has neither "commonIn" nor "req"`)
	}
	return b, nil
}

// writeJSON renders v as compact JSON the way the platform's fastjson does
// with sorted fields: object keys sorted, null object members omitted, null
// array elements kept, no HTML escaping, non-ASCII as raw UTF-8.
func writeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, x)
	case json.Number:
		b.WriteString(string(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k, e := range x {
			if e != nil {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeJSON(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	default:
		// Typed values (structs, typed maps) go through encoding/json once
		// and are then rendered canonically.
		raw, err := json.Marshal(x)
		if err != nil {
			writeString(b, fmt.Sprint(x))
			return
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var g any
		if d.Decode(&g) != nil {
			writeString(b, string(raw))
			return
		}
		writeJSON(b, g)
	}
}

const hex = "0123456789abcdef"

func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\ufffd")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
