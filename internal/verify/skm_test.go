package verify

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

func newSKM(srvURL string, mut func(*SKMOptions)) *SKM {
	d := platform.DefaultSKM()
	o := SKMOptions{BaseURL: srvURL, ScanPath: d.Path, IDPath: d.IDPath, AppMark: d.AppMark, AppSecret: d.AppSecret,
		TimestampUnit: "ms", Cipher: "aes-128-ecb", CipherKey: d.Key, Source: "nanjing"}
	if mut != nil {
		mut(&o)
	}
	return NewSKM(o)
}

func TestSKM(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := newSKM(e.srv.URL, nil)
	for q, want := range map[string]string{"GREEN0001": "green", "YELLOW0002": "yellow", "RED0003": "red"} {
		id, err := c.Verify(ctx, card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=" + q})
		if err != nil {
			t.Fatal(err)
		}
		if id.Level != want || id.Name == "" || id.IDNumber == "" || id.Tip == "" {
			t.Fatalf("%s: %+v", q, id)
		}
	}
	_, err := c.Verify(ctx, card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=EXPIRED"})
	wantClass(t, err, card.Rejected, 111)
	_, err = c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "x:1"})
	wantClass(t, err, card.Rejected, 0)

	id, err := c.VerifyID(ctx, "432901198810228888", "")
	if err != nil || id.Name != "龙小英" || id.Level != "green" {
		t.Fatalf("VerifyID: %+v %v", id, err)
	}

	bad := newSKM(e.srv.URL, func(o *SKMOptions) { o.AppSecret = "wrong" })
	_, err = bad.Verify(ctx, card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"})
	wantClass(t, err, card.Fatal, 118)

	wrongKey := newSKM(e.srv.URL, func(o *SKMOptions) { o.CipherKey = "fedcba9876543210" })
	_, err = wrongKey.Verify(ctx, card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"})
	wantClass(t, err, card.Fatal, 116)

	order := newSKM(e.srv.URL, func(o *SKMOptions) { o.SignOrder = []string{"timestamp", "appmark", "appsecret"} })
	_, err = order.Verify(ctx, card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"})
	wantClass(t, err, card.Fatal, 118)
}

func TestSKMAnswerShapes(t *testing.T) {
	ci := skmCipher{kind: "aes-128-ecb", key: []byte("0123456789abcdef")}
	sealed, _ := ci.seal([]byte(`{"res":{"name":"张三","level":"绿码","idcardNo":"11010519491231002x"},"tip":"绿色: 通行"}`))
	tests := map[string]struct {
		body  string
		level string
		class card.Class
	}{
		"standard encrypted":  {`{"retcode":0,"data":"` + sealed + `"}`, "green", 0},
		"standard plain data": {`{"retcode":"0","data":{"res":{"name":"a","level":"yellow"}}}`, "yellow", 0},
		"integration shape":   {`{"resCode":0,"resMessage":"ok","res":{"name":"a","level":"red"}}`, "red", 0},
		"expired":             {`{"resCode":111,"resMessage":"过期"}`, "", card.Rejected},
		"no permission":       {`{"retcode":116,"msg":"无权限"}`, "", card.Fatal},
		"no code":             {`{"data":{}}`, "", card.Retryable},
		"garbage data":        {`{"retcode":0,"data":"!!!"}`, "", card.Retryable},
		"html":                {`<html>`, "", card.Retryable},
		"ok without res":      {`{"retcode":0}`, "", card.Retryable},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tt.body)) }))
			defer srv.Close()
			c := newSKM(srv.URL, func(o *SKMOptions) { o.HTTP = &http.Client{Timeout: time.Second} })
			id, err := c.Verify(context.Background(), card.Request{Kind: card.KindSKM, Text: "https://a.jszwfw.gov.cn/?t=1"})
			if tt.class != 0 {
				wantClass(t, err, tt.class, 0)
				return
			}
			if err != nil || id.Level != tt.level {
				t.Fatalf("%+v %v", id, err)
			}
		})
	}
}

func TestSKMSignAndCipher(t *testing.T) {
	// MD5 of "am" + "sec" + "123" = MD5("amsec123"), lower-case hex.
	if got := skmSign([]string{"appmark", "appsecret", "timestamp"}, "am", "sec", "123"); got != md5hex("amsec123") {
		t.Fatalf("sign %q", got)
	}
	if got := skmSign([]string{"timestamp", "appmark", "appsecret"}, "am", "sec", "123"); got != md5hex("123amsec") {
		t.Fatalf("sign order ignored: %q", got)
	}
	ci := skmCipher{kind: "aes-128-ecb", key: []byte("0123456789abcdef")}
	for _, plain := range []string{"", "a", "0123456789abcdef", `{"url":"https://x"}`} {
		s, err := ci.seal([]byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		back, err := ci.open(s)
		if err != nil || string(back) != plain {
			t.Fatalf("round trip %q → %q %v", plain, back, err)
		}
	}
	if _, err := ci.open("AAAA"); err == nil {
		t.Fatal("short ciphertext accepted")
	}
	if got := skmTimestamp(time.Unix(1700000000, 0), "s"); got != "1700000000" {
		t.Fatal(got)
	}
	if got := skmTimestamp(time.Unix(1700000000, 0), "ms"); got != "1700000000000" {
		t.Fatal(got)
	}
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func TestSKMWithSM4(t *testing.T) {
	cfg := platform.DefaultSKM()
	cfg.Cipher = "sm4-ecb"
	fake := platform.New(platform.Config{SKM: cfg})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	c := newSKM(srv.URL, func(o *SKMOptions) { o.Cipher = "sm4-ecb" })
	id, err := c.Verify(context.Background(), card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"})
	if err != nil || id.Level != "green" {
		t.Fatalf("%+v %v", id, err)
	}
	aes := newSKM(srv.URL, nil) // the wrong cipher for this deployment
	if _, err := aes.Verify(context.Background(), card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"}); err == nil {
		t.Fatal("AES client accepted by an SM4 deployment")
	}
}
