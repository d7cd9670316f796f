package ha

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestCodecSealsAndOpens(t *testing.T) {
	c, err := newCodec(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Token: "APPTOKEN-SECRET", FetchedAt: time.Unix(100, 0).UTC(), ExpiresAt: time.Unix(7300, 0).UTC(), Epoch: 42, By: "gw1"}
	v, err := c.seal("/scanagent/ehc/app/token", r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(v, []byte("APPTOKEN")) || !bytes.HasPrefix(v, []byte(sealPrefix)) {
		t.Fatalf("sealed value %q shows the token or lacks the prefix", v)
	}
	got, err := c.open("/scanagent/ehc/app/token", v)
	if err != nil || got != r {
		t.Fatalf("open = %+v, %v; want %+v", got, err, r)
	}
	v2, _ := c.seal("/scanagent/ehc/app/token", r)
	if bytes.Equal(v, v2) {
		t.Fatal("two seals of one record are equal: the nonce is not fresh")
	}
	other, _ := newCodec(testKey(2))
	tampered := append([]byte(nil), v...)
	tampered[len(tampered)-3] ^= 1
	for name, open := range map[string]func() (Record, error){
		"another key":      func() (Record, error) { return other.open("/scanagent/ehc/app/token", v) },
		"another etcd key": func() (Record, error) { return c.open("/scanagent/ehc/other/token", v) },
		"tampered":         func() (Record, error) { return c.open("/scanagent/ehc/app/token", tampered) },
		"clear text":       func() (Record, error) { return c.open("/scanagent/ehc/app/token", []byte(`{"token":"x"}`)) },
	} {
		if _, err := open(); !errors.Is(err, errOpen) {
			t.Errorf("%s: err = %v, want errOpen", name, err)
		}
	}
	if _, err := newCodec([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestZapLoggerWritesToZerolog(t *testing.T) {
	var buf bytes.Buffer
	lg := zapLogger(zerolog.New(&buf).Level(zerolog.InfoLevel)).Named("etcd-client").With(zap.String("endpoint", "127.0.0.1:2379"))
	lg.Debug("dropped")
	lg.Warn("retrying of unary invoker failed", zap.Int("attempt", 2), zap.Error(errors.New("unavailable")))
	out := buf.String()
	for _, want := range []string{`"level":"warn"`, `"logger":"etcd-client"`, `"endpoint":"127.0.0.1:2379"`, `"attempt":2`, `"error":"unavailable"`, `"message":"retrying of unary invoker failed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %s lacks %s", out, want)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("a debug line came through: %s", out)
	}
}
