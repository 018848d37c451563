package engine

import (
	"math/big"
	"strconv"
	"strings"
	"unicode"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// ComfyUI builds many of its messages with Python's str() and repr() of JSON
// values ("Value 16385 bigger than max of 16384", "'abc'", "['a', 'b']"). The
// helpers here reproduce those spellings for the value model of package pyjson.

// pyStr returns str(v) of a decoded JSON value.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyRepr returns repr(v) of a decoded JSON value.
func pyRepr(v any) string {
	var b strings.Builder
	writePyRepr(&b, v)
	return b.String()
}

func writePyRepr(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		b.WriteString(pyStringRepr(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		b.WriteString(x.String())
	case float64:
		b.WriteString(pyjson.FormatFloat(x))
	case *pyjson.Object:
		b.WriteByte('{')
		for i, k := range x.Keys() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStringRepr(k))
			b.WriteString(": ")
			writePyRepr(b, x.Value(k))
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyRepr(b, e)
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStringRepr(e))
		}
		b.WriteByte(']')
	default:
		b.WriteString(pyStringRepr(pyStr(pyjson.FromGo(v))))
	}
}

// pyStringRepr returns repr(s): single quotes unless s holds a single quote
// and no double quote, backslash escapes for specials and non-printables.
func pyStringRepr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		case r <= 0xffff:
			b.WriteString(`\u`)
			b.WriteString(hex4(int64(r)))
		default:
			b.WriteString(`\U`)
			s := strconv.FormatInt(int64(r), 16)
			b.WriteString(strings.Repeat("0", 8-len(s)) + s)
		}
	}
	b.WriteByte(q)
	return b.String()
}

const hexDigits = "0123456789abcdef"

func hex4(v int64) string {
	s := strconv.FormatInt(v, 16)
	return strings.Repeat("0", 4-len(s)) + s
}

// pyTypeName returns the Python type name of a decoded JSON value, as in
// error messages ("not 'NoneType'").
func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case int, int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case *pyjson.Object:
		return "dict"
	case []any:
		return "list"
	}
	return "object"
}
