package queue

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one queued platform call.
type Record struct {
	Seq      uint64    `json:"seq"`
	Kind     string    `json:"kind"`
	Payload  []byte    `json:"-"`
	Enqueued time.Time `json:"enqueued"`
	Attempts int       `json:"attempts"`
	// RequestID is the requestId of the last attempt when Unknown (that
	// attempt's outcome is unknown: sent, no definite answer, so the next
	// attempt must reuse it), or the one the next attempt will be sent
	// with (next; see ids.go).
	RequestID   string    `json:"requestId,omitempty"`
	Unknown     bool      `json:"unknown,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	// DeadAt is set on dead letters.
	DeadAt time.Time `json:"deadAt,omitzero"`

	// next: RequestID was assigned for the next attempt (at enqueue, or
	// when an attempt got a definite answer), stored with flag 4. Files
	// written before it have neither next nor Unknown after a definite
	// answer: such a record gets a new requestId before it is sent.
	next bool
	// reused is set for an attempt that may repeat an attempt already
	// sent with the same requestId (not stored; see ids.go).
	reused bool
}

const (
	recordVersion = 1
	sealedMarker  = 0xE1
)

var errCorruptRecord = errors.New("corrupt record")

func putUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func putBytes(b, v []byte) []byte          { return append(binary.AppendUvarint(b, uint64(len(v))), v...) }

func unixMilli(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMilli())
}

func fromMilli(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(v))
}

// marshal encodes a record compactly: version, kind, times, attempts,
// flags (1 unknown, 2 raw requestId, 4 next), requestId (raw 16 bytes when it is 32 hex digits), last error,
// dead time, payload.
func (r *Record) marshal() []byte {
	b := make([]byte, 0, 64+len(r.Payload)+len(r.LastError))
	b = append(b, recordVersion)
	b = putBytes(b, []byte(r.Kind))
	b = putUvarint(b, unixMilli(r.Enqueued))
	b = putUvarint(b, uint64(r.Attempts))
	var flags byte
	if r.Unknown {
		flags |= 1
	}
	if r.next && !r.Unknown {
		flags |= 4 // versions without it ignore the bit: they take a new id
	}
	if rid, ok := rawID(r.RequestID); ok {
		flags |= 2
		b = append(b, flags)
		b = append(b, rid[:]...)
	} else {
		b = append(b, flags)
		b = putBytes(b, []byte(r.RequestID))
	}
	b = putUvarint(b, unixMilli(r.NextAttempt))
	b = putBytes(b, []byte(r.LastError))
	b = putUvarint(b, unixMilli(r.DeadAt))
	return putBytes(b, r.Payload)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorruptRecord
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = errCorruptRecord
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func unmarshal(b []byte) (Record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return Record{}, errCorruptRecord
	}
	d := &decoder{b: b[1:]}
	var r Record
	r.Kind = string(d.bytes())
	r.Enqueued = fromMilli(d.uvarint())
	r.Attempts = int(d.uvarint())
	flags := d.fixed(1)
	if d.err != nil {
		return Record{}, d.err
	}
	r.Unknown = flags[0]&1 != 0
	r.next = flags[0]&4 != 0 && !r.Unknown
	if flags[0]&2 != 0 {
		r.RequestID = strings.ToUpper(hex.EncodeToString(d.fixed(16)))
	} else {
		r.RequestID = string(d.bytes())
	}
	r.NextAttempt = fromMilli(d.uvarint())
	r.LastError = string(d.bytes())
	r.DeadAt = fromMilli(d.uvarint())
	r.Payload = append([]byte(nil), d.bytes()...)
	if d.err != nil || len(d.b) != 0 {
		return Record{}, errCorruptRecord
	}
	return r, nil
}

// sealer encrypts record values at rest (AES-256-GCM); the key bytes of
// the record are the additional data, so a value cannot be moved to
// another key unnoticed.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return nil, nil
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("queue key: %w", err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(key, plain []byte) []byte {
	if s == nil {
		return plain
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealedMarker
	_, _ = rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plain, key)
}

func (s *sealer) open(key, v []byte) ([]byte, error) {
	sealed := len(v) > 0 && v[0] == sealedMarker
	switch {
	case s == nil && sealed:
		return nil, errors.New("record is encrypted but no queue.key is configured")
	case s == nil:
		return v, nil
	case !sealed:
		return v, nil // written before encryption was switched on
	}
	n := s.aead.NonceSize()
	if len(v) < 1+n {
		return nil, errCorruptRecord
	}
	plain, err := s.aead.Open(nil, v[1:1+n], v[1+n:], key)
	if err != nil {
		return nil, errors.New("record cannot be decrypted (wrong queue.key?)")
	}
	return plain, nil
}
