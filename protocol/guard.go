package protocol

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// errShort: a MessagePack header declares more than the payload holds.
var errShort = errors.New("declared length exceeds the payload")

// errTooDeep: containers nested deeper than maxMsgPackDepth.
var errTooDeep = errors.New("nested too deeply")

// errBinKey, errBinField: bin where the spec requires str [IM-1.2-1].
var (
	errBinKey   = errors.New("map keys must be str, not bin")
	errBinField = errors.New("payload fields must be str, not bin")
	errBadUTF8  = errors.New("str is not valid UTF-8")
)

// maxMsgPackDepth bounds container nesting in a payload; message bodies are
// limited to 32 levels after decoding ([IM-4.1]), the envelope adds a few.
const maxMsgPackDepth = 64

// checkMsgPackSizes walks the MessagePack value at the start of p without
// decoding it and fails if a str, bin, ext, array or map header declares
// more bytes or elements than p still holds. The decoder allocates a map
// with the declared capacity before reading it: a 40-byte payload
// declaring 2^32 entries made it allocate 10 GB. Bad input must never
// crash a node [IM-6.1-3].
//
// It also bounds nesting to maxMsgPackDepth: the decoder recurses per level,
// and 250,000 nested one-element arrays in one packet cost 128 MB of stack.
//
// And it refuses bin where the spec wants str [IM-1.2-1]: as a map key at
// any depth, and as a field of the payload object itself (cmid, to, type,
// ids…), which the decoder would otherwise take as a string unchecked
// (bin in bodies is only discouraged, [IM-1.2-8]).
func checkMsgPackSizes(p []byte) error {
	pos := 0
	pending := []int{1}    // values still to read in each open container
	isMap := []bool{false} // whether each open container is a map
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			isMap = isMap[:top]
			continue
		}
		if pos >= len(p) {
			return errShort
		}
		b := p[pos]
		pos++
		if b == 0xc4 || b == 0xc5 || b == 0xc6 {
			switch {
			case isMap[top] && pending[top]%2 == 0:
				return errBinKey
			case isMap[top] && top == 1:
				return errBinField
			}
		}
		pending[top]--
		var skip, elems, n int // bytes to skip, elements per declared n
		switch {
		case b <= 0x7f || b >= 0xe0, b == 0xc0, b == 0xc2, b == 0xc3:
		case b&0xf0 == 0x80:
			n, elems = int(b&0x0f), 2
		case b&0xf0 == 0x90:
			n, elems = int(b&0x0f), 1
		case b&0xe0 == 0xa0:
			skip = int(b & 0x1f)
		default:
			size, lenBytes, extra, container := headerOf(b)
			if size < 0 {
				return errors.New("invalid MessagePack type byte")
			}
			if lenBytes == 0 {
				skip = size
				break
			}
			if len(p)-pos < lenBytes {
				return errShort
			}
			var l uint64
			switch lenBytes {
			case 1:
				l = uint64(p[pos])
			case 2:
				l = uint64(binary.BigEndian.Uint16(p[pos:]))
			case 4:
				l = uint64(binary.BigEndian.Uint32(p[pos:]))
			}
			pos += lenBytes
			if l > uint64(len(p)) {
				return errShort
			}
			if container > 0 {
				n, elems = int(l), container
			} else {
				skip = int(l) + extra
			}
		}
		if skip > len(p)-pos {
			return errShort
		}
		if (b&0xe0 == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb) && !utf8.Valid(p[pos:pos+skip]) {
			return errBadUTF8 // JSON devices could not be given it as it is
		}
		pos += skip
		if n > 0 {
			// Every element takes at least one byte.
			if n*elems > len(p)-pos {
				return errShort
			}
			if len(pending) > maxMsgPackDepth {
				return errTooDeep
			}
			pending = append(pending, n*elems)
			isMap = append(isMap, elems == 2)
		}
	}
	return nil
}

// headerOf describes the type byte b (not a fix type): a fixed payload
// size (lenBytes 0), or a length field of lenBytes bytes followed by extra
// bytes and that many bytes, or (container > 0) that many elements times
// container. size < 0 means invalid.
func headerOf(b byte) (size, lenBytes, extra, container int) {
	switch b {
	case 0xcc, 0xd0:
		return 1, 0, 0, 0
	case 0xcd, 0xd1:
		return 2, 0, 0, 0
	case 0xca, 0xce, 0xd2:
		return 4, 0, 0, 0
	case 0xcb, 0xcf, 0xd3:
		return 8, 0, 0, 0
	case 0xd4:
		return 2, 0, 0, 0
	case 0xd5:
		return 3, 0, 0, 0
	case 0xd6:
		return 5, 0, 0, 0
	case 0xd7:
		return 9, 0, 0, 0
	case 0xd8:
		return 17, 0, 0, 0
	case 0xc4, 0xd9:
		return 0, 1, 0, 0
	case 0xc5, 0xda:
		return 0, 2, 0, 0
	case 0xc6, 0xdb:
		return 0, 4, 0, 0
	case 0xc7:
		return 0, 1, 1, 0
	case 0xc8:
		return 0, 2, 1, 0
	case 0xc9:
		return 0, 4, 1, 0
	case 0xdc:
		return 0, 2, 0, 1
	case 0xdd:
		return 0, 4, 0, 1
	case 0xde:
		return 0, 2, 0, 2
	case 0xdf:
		return 0, 4, 0, 2
	}
	return -1, 0, 0, 0
}
