package ha

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is the shared appToken as it is stored in etcd.
type Record struct {
	Token     string    `json:"token"`
	FetchedAt time.Time `json:"fetchedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Epoch is the create revision of the election key of the leader that
	// fetched it: it grows with every leadership.
	Epoch int64  `json:"epoch"`
	By    string `json:"by"`
}

// sealPrefix marks a sealed value (and its format's version).
const sealPrefix = "v1:"

// codec seals records with AES-256-GCM. The etcd key the value is stored
// under is the additional data: a value moved to another key (or another
// appId's key) does not open.
type codec struct{ aead cipher.AEAD }

func newCodec(key []byte) (*codec, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("token key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &codec{aead: aead}, nil
}

// seal returns the value to store under name.
func (c *codec) seal(name string, r Record) ([]byte, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := c.aead.Seal(nonce, nonce, plain, []byte(name))
	return []byte(sealPrefix + base64.StdEncoding.EncodeToString(sealed)), nil
}

// errOpen is a stored value that does not open: another key, tampering,
// or another format.
var errOpen = errors.New("stored token does not open with gateway.ha.token_key (is the key the same on every gateway?)")

// open returns the record sealed in value, stored under name.
func (c *codec) open(name string, value []byte) (Record, error) {
	s, ok := strings.CutPrefix(string(value), sealPrefix)
	if !ok {
		return Record{}, fmt.Errorf("%w: unknown format", errOpen)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < c.aead.NonceSize() {
		return Record{}, fmt.Errorf("%w: not Base64", errOpen)
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, b[:n], b[n:], []byte(name))
	if err != nil {
		return Record{}, errOpen
	}
	var r Record
	if err := json.Unmarshal(plain, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", errOpen, err)
	}
	return r, nil
}
