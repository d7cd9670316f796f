package scanner

// Linux input key codes (linux/input-event-codes.h) to characters on a US
// keyboard layout, unshifted and shifted. Keyboard-wedge scanners type with
// this layout unless reconfigured.
var usKeymap = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'}, 7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
	12: {'-', '_'}, 13: {'=', '+'}, 15: {'\t', '\t'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'}, 21: {'y', 'Y'}, 22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'},
	26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'}, 35: {'h', 'H'}, 36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'},
	39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'}, 49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'}, 57: {' ', ' '},
	// keypad
	71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'}, 75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'},
	79: {'1', '1'}, 80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'}, 98: {'/', '/'}, 55: {'*', '*'},
}

const (
	keyEnter      = 28
	keyKPEnter    = 96
	keyLeftShift  = 42
	keyRightShift = 54
	keyCapsLock   = 58
)

// KeyDecoder turns key events into scans: characters by the US keymap with
// shift (and caps lock for letters), Enter ends a scan.
type KeyDecoder struct {
	shift, caps bool
	buf         []byte
	max         int
}

// NewKeyDecoder returns a decoder; max bounds a scan.
func NewKeyDecoder(max int) *KeyDecoder {
	if max <= 0 {
		max = 4096
	}
	return &KeyDecoder{max: max}
}

// Key consumes one EV_KEY event (value 1 press, 0 release, 2 repeat) and
// returns a completed scan on Enter.
func (k *KeyDecoder) Key(code uint16, value int32) ([]byte, bool) {
	switch code {
	case keyLeftShift, keyRightShift:
		k.shift = value != 0
		return nil, false
	case keyCapsLock:
		if value == 1 {
			k.caps = !k.caps
		}
		return nil, false
	}
	if value == 0 {
		return nil, false
	}
	if code == keyEnter || code == keyKPEnter {
		out := k.buf
		k.buf = nil
		return out, len(out) > 0
	}
	pair, ok := usKeymap[code]
	if !ok || len(k.buf) >= k.max {
		return nil, false
	}
	c := pair[0]
	shifted := k.shift
	if k.caps && c >= 'a' && c <= 'z' {
		shifted = !shifted
	}
	if shifted {
		c = pair[1]
	}
	k.buf = append(k.buf, c)
	return nil, false
}
