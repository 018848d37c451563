package pyjson

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting, as Python's recursion limit bounds json.loads.
const maxDepth = 512

var errDepth = errors.New("JSON nested too deeply")

// Parse decodes one JSON text into the value model of the package. Like
// Python's json.loads it accepts NaN, Infinity and -Infinity, keeps the last
// of duplicate keys (at the position of the first), and turns invalid UTF-8
// and lone surrogates into U+FFFD (Go strings cannot hold the latter); unlike
// it, it refuses nesting deeper than maxDepth instead of overflowing a stack.
func Parse(data []byte) (any, error) {
	p := &jsonParser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("extra data after the JSON value")
	}
	return v, nil
}

type jsonParser struct {
	data []byte
	pos  int
}

// syntaxError is a JSON decoding error with the byte offset where it happened.
type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s (at byte %d)", e.msg, e.offset) }

func (p *jsonParser) errorf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), offset: p.pos}
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of JSON input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == 'N':
		return math.NaN(), p.literal("NaN")
	case c == 'I':
		return math.Inf(1), p.literal("Infinity")
	case c == '-' && bytes.HasPrefix(p.data[p.pos:], []byte("-Infinity")):
		return math.Inf(-1), p.literal("-Infinity")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) literal(lit string) error {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
		return p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	p.pos++ // {
	o := NewObject()
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return o, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expecting a property name in double quotes")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expecting ':' delimiter")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		o.Set(k.(string), v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of JSON input")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return o, nil
		default:
			return nil, p.errorf("expecting ',' delimiter")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.pos++ // [
	a := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return a, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of JSON input")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return a, nil
		default:
			return nil, p.errorf("expecting ',' delimiter")
		}
	}
}

func (p *jsonParser) str() (any, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return string(bytes.ToValidUTF8(s, []byte("\uFFFD"))), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	var b []byte
	b = append(b, p.data[start:p.pos]...)
	for {
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(b) {
				b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
			}
			return string(b), nil
		case c < 0x20:
			return nil, p.errorf("invalid control character in string")
		case c == '\\':
			if p.pos+1 >= len(p.data) {
				return nil, p.errorf("unterminated string")
			}
			e := p.data[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return nil, err
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
						save := p.pos
						p.pos += 2
						if x, err := p.hex4(); err == nil {
							r2 = x
						} else {
							p.pos = save
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						// A lone surrogate: Python keeps it; Go strings cannot.
						r = utf8.RuneError
						if r2 >= 0 {
							b = utf8.AppendRune(b, r)
							r = r2
							if utf16.IsSurrogate(r) {
								r = utf8.RuneError
							}
						}
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, p.errorf("invalid \\escape")
			}
		default:
			b = append(b, c)
			p.pos++
		}
	}
}

func (p *jsonParser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("invalid \\uXXXX escape")
	}
	v, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, p.errorf("invalid \\uXXXX escape")
	}
	p.pos += 4
	return rune(v), nil
}

func (p *jsonParser) number() (any, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return nil, p.errorf("invalid number")
	}
	isFloat := false
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		isFloat = true
		if digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		isFloat = true
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	text := string(p.data[start:p.pos])
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			// Out of range: Python gives ±inf or 0, like ParseFloat's value.
			var ne *strconv.NumError
			if !errors.As(err, &ne) || !errors.Is(ne.Err, strconv.ErrRange) {
				return nil, p.errorf("invalid number")
			}
		}
		return f, nil
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n, nil
	}
	if len(text) > MaxIntDigits+1 {
		return nil, p.errorf("integer has more than %d digits", MaxIntDigits)
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, p.errorf("invalid number")
	}
	return n, nil
}

// MaxIntDigits is Python's default limit for int/str conversions: Parse
// refuses longer integers, as json.loads does.
const MaxIntDigits = 4300
