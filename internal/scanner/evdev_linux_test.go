//go:build linux

package scanner

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestParseInputEvent(t *testing.T) {
	for _, ev := range []inputEvent{
		{Time: unix.Timeval{Sec: 1700000000, Usec: 123456}, Type: evKey, Code: 30, Value: 1},
		{Type: 0x04, Code: 0x04, Value: 0x70004},
		{Type: evKey, Code: 0xffff, Value: -1},
	} {
		b, err := binary.Append(nil, binary.NativeEndian, ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != int(unsafe.Sizeof(ev)) {
			t.Fatalf("encoded %d bytes, struct is %d", len(b), unsafe.Sizeof(ev))
		}
		typ, code, value := parseInputEvent(b)
		if typ != ev.Type || code != ev.Code || value != ev.Value {
			t.Fatalf("parsed %d %d %d, want %d %d %d", typ, code, value, ev.Type, ev.Code, ev.Value)
		}
	}
}
