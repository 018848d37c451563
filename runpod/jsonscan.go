package runpod

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting, as encoding/json does, so a hostile body cannot
// make the scanner's stack grow without limit.
const maxJSONDepth = 10000

// errStringTooLong reports a string value longer than the caller allowed.
var errStringTooLong = errors.New("string value too long")

// syntaxError is malformed JSON at a byte offset of the body.
type syntaxError struct {
	Offset int64
	msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.msg)
}

// scanner is a pull reader of one JSON text that never holds more than a
// bounded part of it in memory: string values can be streamed through an
// io.Reader, skipped, or read up to a cap. It tracks the absolute offset of
// every byte so that callers can come back to a value later through an
// io.ReaderAt. It is the reason a 200 MB job output costs no more memory than
// a small one.
type scanner struct {
	r   *bufio.Reader
	pos int64 // absolute offset of the next unread byte
	err error // sticky error
}

func newScanner(r io.Reader, base int64) *scanner {
	size := 64 << 10
	if sr, ok := r.(*io.SectionReader); ok {
		// A small body needs no large buffer.
		size = int(max(16, min(int64(size), sr.Size())))
	}
	return &scanner{r: bufio.NewReaderSize(r, size), pos: base}
}

func (s *scanner) fail(format string, args ...any) error {
	if s.err == nil {
		s.err = &syntaxError{Offset: s.pos, msg: fmt.Sprintf(format, args...)}
	}
	return s.err
}

func (s *scanner) ioFail(err error) error {
	if s.err != nil {
		return s.err
	}
	if errors.Is(err, io.EOF) {
		return s.fail("unexpected end of input")
	}
	s.err = err
	return err
}

func (s *scanner) readByte() (byte, error) {
	if s.err != nil {
		return 0, s.err
	}
	b, err := s.r.ReadByte()
	if err != nil {
		return 0, s.ioFail(err)
	}
	s.pos++
	return b, nil
}

// peek skips whitespace and returns the next byte without consuming it.
func (s *scanner) peek() (byte, error) {
	if s.err != nil {
		return 0, s.err
	}
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, s.ioFail(err)
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			s.pos++
			continue
		}
		if err := s.r.UnreadByte(); err != nil {
			return 0, s.ioFail(err)
		}
		return b, nil
	}
}

func (s *scanner) expect(c byte) error {
	b, err := s.peek()
	if err != nil {
		return err
	}
	if b != c {
		return s.fail("expected %q, found %q", c, b)
	}
	_, err = s.readByte()
	return err
}

// offset is the absolute offset of the next unread byte.
func (s *scanner) offset() int64 { return s.pos }

// end checks that only whitespace remains.
func (s *scanner) end() error {
	if s.err != nil {
		return s.err
	}
	for {
		b, err := s.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return s.ioFail(err)
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return s.fail("unexpected %q after the top-level value", b)
		}
	}
}

// object reads an object, calling fn for each member with the scanner placed
// at the member's value; fn must consume exactly that value.
func (s *scanner) object(fn func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	b, err := s.peek()
	if err != nil {
		return err
	}
	if b == '}' {
		_, err = s.readByte()
		return err
	}
	for {
		if b, err := s.peek(); err != nil {
			return err
		} else if b != '"' {
			return s.fail("expected an object key, found %q", b)
		}
		key, _, err := s.stringCapped(4096)
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		b, err := s.peek()
		if err != nil {
			return err
		}
		_, _ = s.readByte()
		switch b {
		case ',':
		case '}':
			return nil
		default:
			return s.fail("expected ',' or '}' in object, found %q", b)
		}
	}
}

// array reads an array, calling fn for each element with the scanner placed
// at it; fn must consume exactly that element.
func (s *scanner) array(fn func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	b, err := s.peek()
	if err != nil {
		return err
	}
	if b == ']' {
		_, err = s.readByte()
		return err
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return err
		}
		b, err := s.peek()
		if err != nil {
			return err
		}
		_, _ = s.readByte()
		switch b {
		case ',':
		case ']':
			return nil
		default:
			return s.fail("expected ',' or ']' in array, found %q", b)
		}
	}
}

// stringCapped reads a string value of at most max bytes (after unescaping).
// A longer value fails with errStringTooLong.
func (s *scanner) stringCapped(max int) (string, bool, error) {
	var buf bytes.Buffer
	n, err := s.copyString(&buf, int64(max))
	if err != nil {
		return "", false, err
	}
	if n > int64(max) {
		return "", false, errStringTooLong
	}
	return buf.String(), true, nil
}

// stringTrunc reads a string value, keeping its first max bytes and skipping
// the rest. It reports whether the value was cut.
func (s *scanner) stringTrunc(max int) (string, bool, error) {
	var buf bytes.Buffer
	r, err := s.stringReader()
	if err != nil {
		return "", false, err
	}
	if _, err := io.Copy(&buf, io.LimitReader(r, int64(max))); err != nil {
		return "", false, err
	}
	rest, err := io.Copy(io.Discard, r)
	if err != nil {
		return "", false, err
	}
	return buf.String(), rest > 0, nil
}

// copyString copies the unescaped string value to w, stopping early when
// more than limit bytes were seen (it then skips the rest and returns a count
// above limit). limit < 0 means no limit.
func (s *scanner) copyString(w io.Writer, limit int64) (int64, error) {
	r, err := s.stringReader()
	if err != nil {
		return 0, err
	}
	var src io.Reader = r
	if limit >= 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return n, err
	}
	if limit >= 0 && n > limit {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return n, err
		}
	}
	return n, nil
}

// stringReader returns a reader over the unescaped bytes of the next value,
// which must be a string. The caller reads it to io.EOF (or drains it) before
// using the scanner again.
func (s *scanner) stringReader() (*stringReader, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	return &stringReader{s: s}, nil
}

// stringReader streams the content of one JSON string, unescaped.
type stringReader struct {
	s       *scanner
	pending []byte
	small   [utf8.UTFMax * 2]byte
	done    bool
}

func (sr *stringReader) Read(p []byte) (int, error) {
	s := sr.s
	n := 0
	for n < len(p) {
		if len(sr.pending) > 0 {
			c := copy(p[n:], sr.pending)
			sr.pending = sr.pending[c:]
			n += c
			continue
		}
		if sr.done {
			break
		}
		if s.err != nil {
			return n, s.err
		}
		if n > 0 && s.r.Buffered() == 0 {
			// Hand back what we have rather than block for more input.
			return n, nil
		}
		if s.r.Buffered() == 0 {
			if _, err := s.r.Peek(1); err != nil {
				return n, s.ioFail(err)
			}
		}
		buf, _ := s.r.Peek(s.r.Buffered())
		if len(buf) > len(p)-n {
			buf = buf[:len(p)-n]
		}
		i := 0
		for i < len(buf) {
			c := buf[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			i++
		}
		copy(p[n:], buf[:i])
		n += i
		_, _ = s.r.Discard(i)
		s.pos += int64(i)
		if i < len(buf) {
			if err := sr.special(); err != nil {
				return n, err
			}
		}
	}
	if n == 0 && sr.done {
		return 0, io.EOF
	}
	return n, nil
}

// special handles the byte at the cursor: the closing quote, an escape, or a
// control character (an error).
func (sr *stringReader) special() error {
	s := sr.s
	c, err := s.readByte()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		sr.done = true
		return nil
	case c < 0x20:
		s.pos--
		return s.fail("control character %#x in string", c)
	}
	e, err := s.readByte()
	if err != nil {
		return err
	}
	var out byte
	switch e {
	case '"', '\\', '/':
		out = e
	case 'b':
		out = '\b'
	case 'f':
		out = '\f'
	case 'n':
		out = '\n'
	case 'r':
		out = '\r'
	case 't':
		out = '\t'
	case 'u':
		r, err := sr.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			r = sr.surrogate(r)
			if s.err != nil {
				return s.err
			}
		}
		sr.pending = utf8.AppendRune(sr.small[:0], r)
		return nil
	default:
		s.pos--
		return s.fail("invalid escape \\%c in string", e)
	}
	sr.small[0] = out
	sr.pending = sr.small[:1]
	return nil
}

// surrogate completes a UTF-16 surrogate pair when the next escape is its low
// half, as encoding/json does; a lone half becomes U+FFFD.
func (sr *stringReader) surrogate(hi rune) rune {
	s := sr.s
	next, err := s.r.Peek(6)
	if err != nil || next[0] != '\\' || next[1] != 'u' {
		return utf8.RuneError
	}
	lo, ok := parseHex4(next[2:6])
	if !ok {
		return utf8.RuneError
	}
	r := utf16.DecodeRune(hi, lo)
	if r == utf8.RuneError {
		return utf8.RuneError
	}
	_, _ = s.r.Discard(6)
	s.pos += 6
	return r
}

func (sr *stringReader) hex4() (rune, error) {
	s := sr.s
	var b [4]byte
	for i := range b {
		c, err := s.readByte()
		if err != nil {
			return 0, err
		}
		b[i] = c
	}
	r, ok := parseHex4(b[:])
	if !ok {
		return 0, s.fail("invalid \\u escape %q", b[:])
	}
	return r, nil
}

func parseHex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skip consumes the next value, checking its syntax.
func (s *scanner) skip() error {
	return s.value(nil)
}

// raw returns the bytes of the next value as they appear in the input, or an
// error if the value is longer than max bytes (the value is consumed anyway).
func (s *scanner) raw(max int) ([]byte, error) {
	if _, err := s.peek(); err != nil {
		return nil, err
	}
	c := &capture{max: max}
	if err := s.value(c); err != nil {
		return nil, err
	}
	if c.over {
		return nil, errStringTooLong
	}
	return c.buf, nil
}

// capture collects the raw bytes of a value up to a cap.
type capture struct {
	buf  []byte
	max  int
	over bool
}

func (c *capture) add(b ...byte) {
	if c == nil || c.over {
		return
	}
	if len(c.buf)+len(b) > c.max {
		c.over = true
		c.buf = nil
		return
	}
	c.buf = append(c.buf, b...)
}

// value consumes one value, iteratively, so deep nesting costs one byte of
// stack per level rather than a call frame.
func (s *scanner) value(c *capture) error {
	var stack []byte // '{' or '['
	expectValue := true
	for {
		if !expectValue && len(stack) == 0 {
			return nil
		}
		b, err := s.peek()
		if err != nil {
			return err
		}
		if expectValue {
			switch {
			case b == '{' || b == '[':
				if len(stack) >= maxJSONDepth {
					return s.fail("nesting deeper than %d", maxJSONDepth)
				}
				_, _ = s.readByte()
				c.add(b)
				closer := byte('}')
				if b == '[' {
					closer = ']'
				}
				nb, err := s.peek()
				if err != nil {
					return err
				}
				if nb == closer {
					_, _ = s.readByte()
					c.add(nb)
					expectValue = false
					break
				}
				stack = append(stack, b)
				if b == '{' {
					if err := s.key(c); err != nil {
						return err
					}
				}
				continue
			case b == '"':
				if err := s.rawString(c); err != nil {
					return err
				}
			case b == '-' || (b >= '0' && b <= '9'):
				if err := s.number(c); err != nil {
					return err
				}
			case b == 't':
				if err := s.literal("true", c); err != nil {
					return err
				}
			case b == 'f':
				if err := s.literal("false", c); err != nil {
					return err
				}
			case b == 'n':
				if err := s.literal("null", c); err != nil {
					return err
				}
			default:
				return s.fail("unexpected %q where a value should be", b)
			}
			expectValue = false
		}
		if len(stack) == 0 {
			return nil
		}
		b, err = s.peek()
		if err != nil {
			return err
		}
		top := stack[len(stack)-1]
		switch {
		case b == ',':
			_, _ = s.readByte()
			c.add(b)
			if top == '{' {
				if err := s.key(c); err != nil {
					return err
				}
			}
			expectValue = true
		case (b == '}' && top == '{') || (b == ']' && top == '['):
			_, _ = s.readByte()
			c.add(b)
			stack = stack[:len(stack)-1]
		default:
			return s.fail("unexpected %q in %s", b, map[byte]string{'{': "object", '[': "array"}[top])
		}
	}
}

// key consumes `"name" :` inside an object.
func (s *scanner) key(c *capture) error {
	b, err := s.peek()
	if err != nil {
		return err
	}
	if b != '"' {
		return s.fail("expected an object key, found %q", b)
	}
	if err := s.rawString(c); err != nil {
		return err
	}
	if err := s.expect(':'); err != nil {
		return err
	}
	c.add(':')
	return nil
}

// rawString consumes a string value, validating escapes, and captures its
// raw form.
func (s *scanner) rawString(c *capture) error {
	start := s.pos
	r, err := s.stringReader()
	if err != nil {
		return err
	}
	if c == nil {
		_, err = io.Copy(io.Discard, r)
		return err
	}
	// Re-encode rather than copy the input: equivalent JSON, and simpler than
	// teeing the buffered reader.
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, int64(c.max)+1)); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if int64(buf.Len()) > int64(c.max) || s.pos-start > int64(c.max) {
		c.over = true
		c.buf = nil
		return nil
	}
	c.add(appendQuoted(nil, buf.Bytes())...)
	return nil
}

// appendQuoted appends b as a JSON string.
func appendQuoted(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, ch := range b {
		switch {
		case ch == '"' || ch == '\\':
			dst = append(dst, '\\', ch)
		case ch < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		default:
			dst = append(dst, ch)
		}
	}
	return append(dst, '"')
}

func (s *scanner) literal(word string, c *capture) error {
	for i := 0; i < len(word); i++ {
		b, err := s.readByte()
		if err != nil {
			return err
		}
		if b != word[i] {
			s.pos--
			return s.fail("invalid literal, expected %q", word)
		}
	}
	c.add([]byte(word)...)
	return nil
}

// number consumes a number with JSON's grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *scanner) number(c *capture) error {
	next := func() (byte, bool) {
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, false
		}
		_ = s.r.UnreadByte()
		return b, true
	}
	take := func() {
		b, _ := s.r.ReadByte()
		s.pos++
		c.add(b)
	}
	digits := func() int {
		n := 0
		for {
			b, ok := next()
			if !ok || b < '0' || b > '9' {
				return n
			}
			take()
			n++
		}
	}
	if b, _ := next(); b == '-' {
		take()
	}
	b, ok := next()
	switch {
	case !ok:
		return s.ioFail(io.EOF)
	case b == '0':
		take()
	case b >= '1' && b <= '9':
		digits()
	default:
		return s.fail("invalid number")
	}
	if b, ok := next(); ok && b == '.' {
		take()
		if digits() == 0 {
			return s.fail("invalid number: no digits after '.'")
		}
	}
	if b, ok := next(); ok && (b == 'e' || b == 'E') {
		take()
		if b, ok := next(); ok && (b == '+' || b == '-') {
			take()
		}
		if digits() == 0 {
			return s.fail("invalid number: no digits in exponent")
		}
	}
	return nil
}
