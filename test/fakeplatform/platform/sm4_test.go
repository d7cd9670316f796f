package platform

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The standard's example (GB/T 32907-2016 Appendix A.1): key and plaintext
// 0123456789abcdeffedcba9876543210.
func TestSM4StandardVector(t *testing.T) {
	key, _ := hex.DecodeString("0123456789abcdeffedcba9876543210")
	want, _ := hex.DecodeString("681edf34d206965e86b3e94f536e4246")
	c, err := newSM4(key)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	c.Encrypt(got, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("encrypt = %x, want %x", got, want)
	}
	c.Decrypt(got, got)
	if !bytes.Equal(got, key) {
		t.Fatalf("decrypt = %x, want %x", got, key)
	}
	if _, err := newSM4(key[:15]); err == nil {
		t.Fatal("a 15-byte key was accepted")
	}
}
