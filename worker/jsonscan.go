package worker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// scanner walks a JSON document without building values. It exists because
// a job input carries megabytes of base64 in a few strings: encoding/json
// reads those at ~200 MB/s, twice (validation, then decoding), which would
// be most of a job's overhead. The scanner finds a string's end with a
// vectorised byte search and checks its bytes eight at a time, and hands
// out sub-slices of the input, so an image string is never copied.
//
// It validates what it walks as strictly as encoding/json does (except that
// it does not check UTF-8, which encoding/json does not either).
type scanner struct {
	data []byte
	pos  int
}

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// errSyntax is the class of every malformed-document error.
var errSyntax = errors.New("not valid JSON")

func (s *scanner) syntaxErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", errSyntax, fmt.Sprintf(format, args...), s.pos)
}

// ws skips whitespace.
func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// consume skips whitespace and the byte c, or fails.
func (s *scanner) consume(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.syntaxErr("unexpected end, want %q", c)
		}
		return s.syntaxErr("unexpected %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// str reads a string at the current position and returns its contents
// between the quotes (still escaped when escaped is true).
func (s *scanner) str() (body []byte, escaped bool, err error) {
	if err := s.consume('"'); err != nil {
		return nil, false, err
	}
	start := s.pos
	d := s.data
	i := start
	for {
		// Fast path: eight bytes at a time while none is a quote, a
		// backslash or a control character.
		for i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i:])
			if hasSpecial(x) {
				break
			}
			i += 8
		}
		if i >= len(d) {
			s.pos = i
			return nil, false, s.syntaxErr("unterminated string")
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
				return nil, false, s.syntaxErr("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					s.pos = i
					return nil, false, s.syntaxErr("bad \\u escape")
				}
				i += 6
			default:
				s.pos = i
				return nil, false, s.syntaxErr("bad escape \\%c", d[i+1])
			}
		case c < 0x20:
			s.pos = i
			return nil, false, s.syntaxErr("control character in string")
		default:
			i++
		}
	}
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

// text reads a string and returns it unescaped.
func (s *scanner) text() (string, error) {
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
		return "", fmt.Errorf("%w: %v", errSyntax, err)
	}
	return out, nil
}

// bytesValue reads a string and returns its unescaped bytes, sharing the
// input when nothing is escaped. Like encoding/json it turns invalid UTF-8
// into U+FFFD.
func (s *scanner) bytesValue() ([]byte, error) {
	s.ws()
	start := s.pos
	body, escaped, err := s.str()
	if err != nil {
		return nil, err
	}
	if !escaped && utf8.Valid(body) {
		return body, nil
	}
	return unescape(s.data[start:s.pos])
}

// unescape decodes a quoted JSON string.
func unescape(quoted []byte) ([]byte, error) {
	var out string
	if err := json.Unmarshal(quoted, &out); err != nil {
		return nil, fmt.Errorf("%w: %v", errSyntax, err)
	}
	return []byte(out), nil
}

// value skips one value and returns its text.
func (s *scanner) value() (json.RawMessage, error) {
	s.ws()
	start := s.pos
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

// skip walks one value, validating it.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.syntaxErr("nested too deeply")
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		s.pos++
		if s.peek() == '}' {
			s.pos++
			return nil
		}
		for {
			if _, _, err := s.str(); err != nil {
				return err
			}
			if err := s.consume(':'); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.pos++
			case '}':
				s.pos++
				return nil
			default:
				return s.syntaxErr("want ',' or '}' in object")
			}
		}
	case c == '[':
		s.pos++
		if s.peek() == ']' {
			s.pos++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return nil
			default:
				return s.syntaxErr("want ',' or ']' in array")
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 0 && s.pos >= len(s.data):
		return s.syntaxErr("unexpected end, want a value")
	default:
		if r, _ := utf8.DecodeRune(s.data[s.pos:]); r != utf8.RuneError {
			return s.syntaxErr("unexpected %q, want a value", r)
		}
		return s.syntaxErr("unexpected byte 0x%02x, want a value", c)
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.syntaxErr("bad literal, want %s", lit)
	}
	s.pos += len(lit)
	return nil
}

// number walks a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
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
		return s.syntaxErr("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			s.pos = i
			return s.syntaxErr("bad number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			s.pos = i
			return s.syntaxErr("bad number")
		}
	}
	s.pos = i
	return nil
}

// end checks that only whitespace is left.
func (s *scanner) end() error {
	if s.ws(); s.pos < len(s.data) {
		return s.syntaxErr("unexpected data after the value")
	}
	return nil
}

// kind names the JSON kind of the value starting at the next byte, for
// messages.
func kindAt(raw []byte) string {
	sc := scanner{data: raw}
	switch c := sc.peek(); {
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
