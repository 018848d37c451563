package pyjson

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Marshal encodes v as Python's json.dumps(v) does with its defaults. v is a
// value of the package's model (see Parse) or a plain Go value, converted
// with FromGo.
func Marshal(v any) []byte { return Append(nil, v) }

// Append appends the json.dumps encoding of v to dst and returns the
// extended slice.
func Append(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		if x {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case string:
		return AppendString(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case *big.Int:
		return x.Append(dst, 10)
	case float64:
		return appendFloat(dst, x)
	case float32:
		return appendFloat(dst, float64(x))
	case *Object:
		dst = append(dst, '{')
		for i, k := range x.keys {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = AppendString(dst, k)
			dst = append(dst, ": "...)
			dst = Append(dst, x.vals[k])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = Append(dst, e)
		}
		return append(dst, ']')
	case []string:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = AppendString(dst, e)
		}
		return append(dst, ']')
	}
	switch pv := FromGo(v).(type) {
	case nil, bool, string, int64, *big.Int, float64, *Object, []any:
		return Append(dst, pv)
	}
	return AppendString(dst, fmt.Sprint(v))
}

// appendFloat writes f as the json module does: repr(f), with NaN and the
// infinities spelled as JavaScript literals.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return append(dst, FormatFloat(f)...)
}

// AppendString appends s as a JSON string escaped the way json.dumps does by
// default (ensure_ascii): '"', '\\' and \n \r \t \b \f escaped by name, every
// other character outside printable ASCII (including DEL) as \uXXXX, with
// surrogate pairs above the BMP. Invalid UTF-8 bytes become \ufffd.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u4 := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	dst = append(dst, '"')
	start := 0 // start of the pending run of plain ASCII
	for i, r := range s {
		if r >= ' ' && r <= '~' && r != '"' && r != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		start = i + utf8.RuneLen(r)
		if r == utf8.RuneError {
			start = i + 1 // an invalid byte, or a real U+FFFD (3 bytes)
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 3 {
				start = i + 3
			}
		}
		switch {
		case r == '"':
			dst = append(dst, '\\', '"')
		case r == '\\':
			dst = append(dst, '\\', '\\')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '\b':
			dst = append(dst, '\\', 'b')
		case r == '\f':
			dst = append(dst, '\\', 'f')
		case r > 0xffff:
			r -= 0x10000
			dst = u4(dst, 0xd800+(r>>10)&0x3ff)
			dst = u4(dst, 0xdc00+r&0x3ff)
		default:
			dst = u4(dst, r)
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// FormatFloat returns Python's repr(f): the shortest digits that round-trip,
// in positional notation for decimal exponents -4 ≤ e < 16 (always with a
// fraction, "1.0") and scientific notation otherwise ("1e-05", "1e+16");
// "nan", "inf" and "-inf" for the special values.
func FormatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp >= -4 && exp < 16 {
		if exp >= 0 {
			if len(digits) <= exp+1 {
				out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
			} else {
				out = digits[:exp+1] + "." + digits[exp+1:]
			}
		} else {
			out = "0." + strings.Repeat("0", -exp-1) + digits
		}
	} else {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		e := strconv.Itoa(exp)
		if len(e) < 2 {
			e = "0" + e
		}
		out = m + "e" + sign + e
	}
	if neg {
		out = "-" + out
	}
	return out
}
