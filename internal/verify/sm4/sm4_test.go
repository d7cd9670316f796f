package sm4

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The example of GB/T 32907-2016 Appendix A.
func TestStandardVector(t *testing.T) {
	key, _ := hex.DecodeString("0123456789abcdeffedcba9876543210")
	want, _ := hex.DecodeString("681edf34d206965e86b3e94f536e4246")
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 16)
	c.Encrypt(out, key) // the plaintext equals the key in the example
	if !bytes.Equal(out, want) {
		t.Fatalf("encrypt = %x, want %x", out, want)
	}
	back := make([]byte, 16)
	c.Decrypt(back, out)
	if !bytes.Equal(back, key) {
		t.Fatalf("decrypt = %x", back)
	}
}

// The same appendix: encrypting 1,000,000 times.
func TestMillionRounds(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	key, _ := hex.DecodeString("0123456789abcdeffedcba9876543210")
	want, _ := hex.DecodeString("595298c7c6fd271f0402f804c33d3f66")
	c, _ := NewCipher(key)
	b := append([]byte(nil), key...)
	for i := 0; i < 1_000_000; i++ {
		c.Encrypt(b, b)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
}

func TestKeySize(t *testing.T) {
	if _, err := NewCipher(make([]byte, 15)); err == nil {
		t.Fatal("short key accepted")
	}
}
