package scanner

import "testing"

func TestKeyDecoder(t *testing.T) {
	// "Ab1:" typed with shift for A and :, then Enter.
	events := []struct {
		code  uint16
		value int32
	}{
		{keyLeftShift, 1}, {30, 1}, {30, 0}, {keyLeftShift, 0},
		{48, 1}, {48, 0}, {2, 1}, {2, 0},
		{keyRightShift, 1}, {39, 1}, {39, 0}, {keyRightShift, 0},
		{keyCapsLock, 1}, {keyCapsLock, 0}, {46, 1}, {46, 0}, {keyCapsLock, 1}, {keyCapsLock, 0},
		{999, 1}, // unknown key ignored
		{keyEnter, 1},
	}
	d := NewKeyDecoder(0)
	var got []byte
	var done bool
	for _, e := range events {
		got, done = d.Key(e.code, e.value)
	}
	if !done || string(got) != "Ab1:C" {
		t.Fatalf("got %q %v", got, done)
	}
	if _, done := d.Key(keyEnter, 1); done {
		t.Fatal("empty Enter produced a scan")
	}
}
