package verify

// This file holds every guess about the Su Kang Code (苏康码) service
// interface of DB32/T 3761.46-2021, whose text is only partly legible (SPEC
// §7). Each guess is a setting in SKMOptions with the documented default;
// nothing outside this file depends on the wire format.
//
// Legible in the standard: sign = MD5(appmark + appsecret + timestamp); the
// business body is JSON sent encrypted as text; authentication parameters are
// encrypted into an `auth` HTTP header; answers carry retcode/data, and the
// verification answer has tip and res. Seen in a public integration:
// {resCode, resMessage, res{name, phone, idcardNo, level}}, codes 0 ok, 111
// expired, 112 not a Su Kang Code, 116/118 no permission.
//
// Guessed: the paths, the timestamp unit (ms), lower-case hex MD5, the
// cipher (AES-128-ECB or SM4-ECB with PKCS#7 padding, Base64), the key
// (configured).

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"scanagent/internal/card"
	"scanagent/internal/verify/sm4"
)

// skmSign is MD5 over the sign_order items concatenated, lower-case hex.
func skmSign(order []string, appMark, appSecret, timestamp string) string {
	var b strings.Builder
	for _, item := range order {
		switch item {
		case "appmark":
			b.WriteString(appMark)
		case "appsecret":
			b.WriteString(appSecret)
		case "timestamp":
			b.WriteString(timestamp)
		}
	}
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

func skmTimestamp(t time.Time, unit string) string {
	if unit == "s" {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// skmCipher encrypts and decrypts the body and the auth header: ECB mode
// with PKCS#7 padding and Base64, with AES-128 or SM4.
type skmCipher struct {
	kind string // aes-128-ecb, sm4-ecb, none
	key  []byte
}

func (c skmCipher) block() (cipher.Block, error) {
	if c.kind == "sm4-ecb" {
		return sm4.NewCipher(c.key)
	}
	return aes.NewCipher(c.key)
}

func (c skmCipher) seal(plain []byte) (string, error) {
	if c.kind == "none" {
		return string(plain), nil
	}
	blk, err := c.block()
	if err != nil {
		return "", err
	}
	n := blk.BlockSize()
	pad := n - len(plain)%n
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	for i := 0; i < len(buf); i += n {
		blk.Encrypt(buf[i:i+n], buf[i:i+n])
	}
	return base64.StdEncoding.EncodeToString(buf), nil
}

func (c skmCipher) open(text string) ([]byte, error) {
	if c.kind == "none" {
		return []byte(text), nil
	}
	buf, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("not Base64: %w", err)
	}
	blk, err := c.block()
	if err != nil {
		return nil, err
	}
	n := blk.BlockSize()
	if len(buf) == 0 || len(buf)%n != 0 {
		return nil, errors.New("ciphertext is not a whole number of blocks")
	}
	for i := 0; i < len(buf); i += n {
		blk.Decrypt(buf[i:i+n], buf[i:i+n])
	}
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > n || !bytes.Equal(buf[len(buf)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errors.New("bad PKCS#7 padding (wrong key?)")
	}
	return buf[:len(buf)-pad], nil
}

// skmAnswer is the union of the answer shapes seen: the standard's
// retcode/data and the integration's resCode/resMessage/res.
type skmAnswer struct {
	RetCode    json.Number     `json:"retcode"`
	Msg        string          `json:"msg"`
	Data       json.RawMessage `json:"data"`
	ResCode    json.Number     `json:"resCode"`
	ResMessage string          `json:"resMessage"`
	Res        *skmRes         `json:"res"`
	Tip        string          `json:"tip"`
}

type skmRes struct {
	Name     string `json:"name"`
	Phone    string `json:"phone"`
	IDCardNo string `json:"idcardNo"`
	Level    string `json:"level"`
	Tip      string `json:"tip"`
}

// decodeSKMAnswer returns the result code, message and result of an answer;
// data may be an encrypted string or a plain object.
func decodeSKMAnswer(body []byte, c skmCipher) (code int, msg string, res *skmRes, tip string, err error) {
	var a skmAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return 0, "", nil, "", fmt.Errorf("answer is not JSON: %w", err)
	}
	codeText, msg := a.RetCode.String(), a.Msg
	if codeText == "" {
		codeText, msg = a.ResCode.String(), a.ResMessage
	}
	if codeText == "" {
		return 0, "", nil, "", errors.New("answer has neither retcode nor resCode")
	}
	code, err = strconv.Atoi(codeText)
	if err != nil {
		return 0, "", nil, "", fmt.Errorf("answer code %q is not an integer", codeText)
	}
	res, tip = a.Res, a.Tip
	if len(a.Data) > 0 && string(a.Data) != "null" {
		inner := []byte(a.Data)
		var s string
		if json.Unmarshal(a.Data, &s) == nil {
			if inner, err = c.open(s); err != nil {
				return 0, "", nil, "", fmt.Errorf("answer data: %w", err)
			}
		}
		var d struct {
			Res *skmRes `json:"res"`
			Tip string  `json:"tip"`
		}
		if err := json.Unmarshal(inner, &d); err != nil {
			return 0, "", nil, "", fmt.Errorf("answer data is not JSON: %w", err)
		}
		if d.Res != nil {
			res = d.Res
		}
		if d.Tip != "" {
			tip = d.Tip
		}
	}
	if res != nil && tip == "" {
		tip = res.Tip
	}
	return code, msg, res, tip, nil
}

// classifySKM maps Su Kang Code result codes.
func classifySKM(code int) card.Class {
	switch code {
	case 111, 112:
		return card.Rejected
	case 116, 118:
		return card.Fatal
	}
	if code >= 500 && code < 600 {
		return card.Retryable
	}
	return card.Rejected
}
