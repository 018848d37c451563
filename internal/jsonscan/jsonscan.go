// Package jsonscan walks a JSON document held in memory without building
// values. It exists because job bodies carry megabytes of base64 in a few
// strings: encoding/json reads those at ~200 MB/s, twice (validation, then
// decoding) and copies them, which would be most of a job's overhead. The
// Scanner finds a string's end eight bytes at a time and hands out
// sub-slices of the input, so an image string is never copied.
//
// It validates what it walks as strictly as encoding/json does (except that
// it does not check UTF-8, which encoding/json does not either). The job-take
// decoder of package serverless and the input decoder of package worker
// share it.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxDepth bounds nesting, as encoding/json does.
const MaxDepth = 10000

// ErrSyntax is the class of every malformed-document error.
var ErrSyntax = errors.New("not valid JSON")

// Scanner reads one JSON document from a byte slice. Its methods skip
// leading whitespace themselves; values it returns share the input.
type Scanner struct {
	data []byte
	pos  int
}

// New returns a Scanner at the start of data.
func New(data []byte) *Scanner { return &Scanner{data: data} }

// Pos is the offset of the next unread byte.
func (s *Scanner) Pos() int { return s.pos }

// Errorf returns an ErrSyntax error at the current offset.
func (s *Scanner) Errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrSyntax, fmt.Sprintf(format, args...), s.pos)
}

// ws skips whitespace.
func (s *Scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// Peek returns the next non-space byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// AtEnd reports whether only whitespace is left.
func (s *Scanner) AtEnd() bool {
	s.ws()
	return s.pos >= len(s.data)
}

// Consume skips whitespace and the byte c, or fails.
func (s *Scanner) Consume(c byte) error {
	if s.Peek() != c {
		if s.pos >= len(s.data) {
			return s.Errorf("unexpected end, want %q", c)
		}
		return s.Errorf("unexpected %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// str reads a string at the current position and returns its contents
// between the quotes (still escaped when escaped is true).
func (s *Scanner) str() (body []byte, escaped bool, err error) {
	if err := s.Consume('"'); err != nil {
		return nil, false, err
	}
	start := s.pos
	d := s.data
	if end, ok := plainString(d[start:]); ok {
		s.pos = start + end + 1
		return d[start : start+end], false, nil
	}
	i := start
	for {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control character.
		for i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i:])
			if hasSpecial(x) {
				break
			}
			i += 8
		}
		if i >= len(d) {
			s.pos = i
			return nil, false, s.Errorf("unterminated string")
		}
		c := d[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return d[start:i], escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				s.pos = i
				return nil, false, s.Errorf("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					s.pos = i
					return nil, false, s.Errorf("bad \\u escape")
				}
				i += 6
			default:
				s.pos = i
				return nil, false, s.Errorf("bad escape \\%c", d[i+1])
			}
		case c < 0x20:
			s.pos = i
			return nil, false, s.Errorf("control character in string")
		default:
			i++
		}
	}
}

// plainString finds the closing quote of a string whose contents start d
// and hold no escape and no control character, the common case and the
// one of base64 data: the quote and any backslash are found with the
// vectorised bytes.IndexByte, control characters 32 bytes at a time. It
// returns the quote's offset, or false for any other string, which the
// byte-by-byte walk then reads (and reports errors in).
func plainString(d []byte) (int, bool) {
	q := bytes.IndexByte(d, '"')
	if q < 0 {
		return 0, false
	}
	seg := d[:q]
	if bytes.IndexByte(seg, '\\') >= 0 {
		return 0, false
	}
	const (
		below = 0x2020202020202020
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+32 <= len(seg); i += 32 {
		a := binary.LittleEndian.Uint64(seg[i:])
		b := binary.LittleEndian.Uint64(seg[i+8:])
		c := binary.LittleEndian.Uint64(seg[i+16:])
		e := binary.LittleEndian.Uint64(seg[i+24:])
		if ((a-below)&^a|(b-below)&^b|(c-below)&^c|(e-below)&^e)&highs != 0 {
			return 0, false
		}
	}
	for ; i < len(seg); i++ {
		if seg[i] < 0x20 {
			return 0, false
		}
	}
	return q, true
}

// hasSpecial reports whether any byte of x is '"', '\\' or below 0x20.
func hasSpecial(x uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	lt20 := (x - 0x2020202020202020) & ^x & highs
	return lt20|hasZero(x^(ones*'"'))|hasZero(x^(ones*'\\')) != 0
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Text reads a string and returns it unescaped. Like encoding/json it turns
// invalid UTF-8 into U+FFFD.
func (s *Scanner) Text() (string, error) {
	s.ws()
	start := s.pos
	body, escaped, err := s.str()
	if err != nil {
		return "", err
	}
	if !escaped && utf8.Valid(body) {
		return string(body), nil
	}
	var out string
	if err := json.Unmarshal(s.data[start:s.pos], &out); err != nil {
		return "", fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return out, nil
}

// Bytes reads a string and returns its unescaped bytes, sharing the input
// when nothing is escaped. Like encoding/json it turns invalid UTF-8 into
// U+FFFD.
func (s *Scanner) Bytes() ([]byte, error) {
	s.ws()
	start := s.pos
	body, escaped, err := s.str()
	if err != nil {
		return nil, err
	}
	if !escaped && utf8.Valid(body) {
		return body, nil
	}
	var out string
	if err := json.Unmarshal(s.data[start:s.pos], &out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return []byte(out), nil
}

// Value reads one value, validating it, and returns its text.
func (s *Scanner) Value() (json.RawMessage, error) {
	s.ws()
	start := s.pos
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

// Object walks the object at the scanner, calling f with the scanner
// positioned at each member's value; f must read the value.
func (s *Scanner) Object(f func(key string) error) error {
	return s.object(true, f)
}

// object walks an object; without keys it checks them but does not build
// them, and f gets "".
func (s *Scanner) object(keys bool, f func(key string) error) error {
	if err := s.Consume('{'); err != nil {
		return err
	}
	if s.Peek() == '}' {
		s.pos++
		return nil
	}
	for {
		var key string
		var err error
		if keys {
			key, err = s.Text()
		} else {
			_, _, err = s.str()
		}
		if err != nil {
			return err
		}
		if err := s.Consume(':'); err != nil {
			return err
		}
		if err := f(key); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.Errorf("want ',' or '}' in object")
		}
	}
}

// Array walks the array at the scanner, calling f with the scanner
// positioned at each element; f must read the element.
func (s *Scanner) Array(f func(i int) error) error {
	if err := s.Consume('['); err != nil {
		return err
	}
	if s.Peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := f(i); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.Errorf("want ',' or ']' in array")
		}
	}
}

// skip walks one value, validating it.
func (s *Scanner) skip(depth int) error {
	if depth > MaxDepth {
		return s.Errorf("nested too deeply")
	}
	switch c := s.Peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		return s.object(false, func(string) error { return s.skip(depth + 1) })
	case c == '[':
		return s.Array(func(int) error { return s.skip(depth + 1) })
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 0 && s.pos >= len(s.data):
		return s.Errorf("unexpected end, want a value")
	default:
		if r, _ := utf8.DecodeRune(s.data[s.pos:]); r != utf8.RuneError {
			return s.Errorf("unexpected %q, want a value", r)
		}
		return s.Errorf("unexpected byte 0x%02x, want a value", c)
	}
}

func (s *Scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.Errorf("bad literal, want %s", lit)
	}
	s.pos += len(lit)
	return nil
}

// number walks a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) number() error {
	d := s.data
	i := s.pos
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		s.pos = i
		return s.Errorf("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			s.pos = i
			return s.Errorf("bad number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			s.pos = i
			return s.Errorf("bad number")
		}
	}
	s.pos = i
	return nil
}

// End checks that only whitespace is left.
func (s *Scanner) End() error {
	if !s.AtEnd() {
		return s.Errorf("unexpected data after the value")
	}
	return nil
}

// Valid reports whether data is one well-formed JSON value, as json.Valid
// does, at the Scanner's speed.
func Valid(data []byte) bool {
	s := New(data)
	return s.skip(0) == nil && s.AtEnd()
}

// Kind names the JSON kind of the value raw starts with, for messages: "a
// string", "an object", "an array", "a boolean", "null", "a number", or
// "nothing" when raw is blank.
func Kind(raw []byte) string {
	s := New(raw)
	switch c := s.Peek(); {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == 0:
		return "nothing"
	default:
		return "a number"
	}
}
