package engine

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// ComfyUI coerces constant inputs with Python's int(), float(), str() and
// bool() before checking min/max. This file reproduces those conversions on
// decoded JSON values, including their error messages, which ComfyUI reports
// verbatim in invalid_input_type errors.

// pyError is a Python exception raised while validating a prompt: Type is the
// exception class ("ValueError", "KeyError", …) and Msg is str(exception).
type pyError struct {
	Type string
	Msg  string
	// where is the Python statement ComfyUI raises from, shown as the last
	// frame of the traceback the engine reports.
	where string
}

func (e *pyError) Error() string { return e.Msg }

// at records the statement the exception stands for.
func (e *pyError) at(stmt string) *pyError {
	e.where = stmt
	return e
}

// traceback returns a Python-style traceback (a list of strings) whose first
// frame is fn running stmt and whose last frame is where the exception was
// raised. The frames name the engine, not a Python file.
func (e *pyError) traceback(fn, stmt string) []any {
	frames := []any{fmt.Sprintf("  File \"comfy/engine\", in %s\n    %s\n", fn, stmt)}
	if e.where != "" {
		frames = append(frames, fmt.Sprintf("  File \"comfy/engine\", in validate_inputs\n    %s\n", e.where))
	}
	return frames
}

func valueErrorf(format string, args ...any) *pyError {
	return &pyError{Type: "ValueError", Msg: fmt.Sprintf(format, args...)}
}

func typeErrorf(format string, args ...any) *pyError {
	return &pyError{Type: "TypeError", Msg: fmt.Sprintf(format, args...)}
}

// pyInt is Python's int(v). The result is int64 or *big.Int.
func pyInt(v any) (any, *pyError) {
	switch x := v.(type) {
	case int64, *big.Int:
		return x, nil
	case int:
		return int64(x), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case float64:
		switch {
		case math.IsNaN(x):
			return nil, valueErrorf("cannot convert float NaN to integer")
		case math.IsInf(x, 0):
			return nil, &pyError{Type: "OverflowError", Msg: "cannot convert float infinity to integer"}
		}
		t := math.Trunc(x)
		if t >= -9.2e18 && t <= 9.2e18 {
			return int64(t), nil
		}
		n, _ := big.NewFloat(t).Int(nil)
		return normInt(n), nil
	case string:
		n, ok := parsePyIntString(x)
		if !ok {
			return nil, valueErrorf("invalid literal for int() with base 10: %s", pyStringRepr(x))
		}
		return n, nil
	}
	return nil, typeErrorf("int() argument must be a string, a bytes-like object or a real number, not '%s'", pyTypeName(v))
}

// parsePyIntString parses a base-10 int() literal: surrounding whitespace, an
// optional sign, digits with single underscores between them.
func parsePyIntString(s string) (any, bool) {
	t := strings.TrimFunc(s, unicode.IsSpace)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return nil, false
	}
	t = strings.ReplaceAll(t, "_", "")
	for _, c := range t {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	if len(t) > pyjson.MaxIntDigits {
		return nil, false
	}
	if neg {
		t = "-" + t
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n, true
	}
	n, ok := new(big.Int).SetString(t, 10)
	if !ok {
		return nil, false
	}
	return n, true
}

// normInt returns n as int64 when it fits.
func normInt(n *big.Int) any {
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}

// pyFloat is Python's float(v).
func pyFloat(v any) (float64, *pyError) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		if math.IsInf(f, 0) {
			return 0, &pyError{Type: "OverflowError", Msg: "int too large to convert to float"}
		}
		return f, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		f, ok := parsePyFloatString(x)
		if !ok {
			return 0, valueErrorf("could not convert string to float: %s", pyStringRepr(x))
		}
		return f, nil
	}
	return 0, typeErrorf("float() argument must be a string or a real number, not '%s'", pyTypeName(v))
}

// parsePyFloatString parses a float() literal: decimal or scientific notation
// with optional underscores between digits, or inf/infinity/nan in any case.
func parsePyFloatString(s string) (float64, bool) {
	t := strings.TrimFunc(s, unicode.IsSpace)
	body := t
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if strings.HasPrefix(t, "-") {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	// Underscores are allowed only between digits.
	for i := 0; i < len(t); i++ {
		if t[i] == '_' {
			if i == 0 || i == len(t)-1 || !isDigit(t[i-1]) || !isDigit(t[i+1]) {
				return 0, false
			}
		}
	}
	t = strings.ReplaceAll(t, "_", "")
	if t == "" {
		return 0, false
	}
	for _, c := range t {
		if !(isDigit(byte(c)) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return 0, false // rejects hex floats, "0x10", etc.
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// pyBool is Python's bool(v): truthiness.
func pyBool(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int64:
		return x != 0
	case int:
		return x != 0
	case *big.Int:
		return x.Sign() != 0
	case float64:
		return x != 0
	case *pyjson.Object:
		return x.Len() > 0
	case []any:
		return len(x) > 0
	}
	return true
}

// isNumber says whether v is a Python number (bool counts, as in Python).
func isNumber(v any) bool {
	switch v.(type) {
	case int64, int, *big.Int, float64, bool:
		return true
	}
	return false
}

// pyCompare compares two numbers like Python's < and >: it returns -1, 0 or
// +1, and ok=false when either is NaN (every comparison is then False). A
// non-number operand raises TypeError, as "'<' not supported between
// instances of 'str' and 'int'".
func pyCompare(op string, a, b any) (cmp int, ok bool, err *pyError) {
	if !isNumber(a) || !isNumber(b) {
		return 0, false, typeErrorf("'%s' not supported between instances of '%s' and '%s'", op, pyTypeName(a), pyTypeName(b))
	}
	fa, fb := numFloat(a), numFloat(b)
	if math.IsNaN(fa) || math.IsNaN(fb) {
		return 0, false, nil
	}
	// Exact comparison when both are integers (big values included).
	ia, aInt := numBig(a)
	ib, bInt := numBig(b)
	if aInt && bInt {
		return ia.Cmp(ib), true, nil
	}
	switch {
	case fa < fb:
		return -1, true, nil
	case fa > fb:
		return 1, true, nil
	}
	return 0, true, nil
}

func numFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	case float64:
		return x
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

func numBig(v any) (*big.Int, bool) {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x), true
	case int:
		return big.NewInt(int64(x)), true
	case *big.Int:
		return x, true
	case bool:
		if x {
			return big.NewInt(1), true
		}
		return big.NewInt(0), true
	}
	return nil, false
}

// pyEqual is Python's == on decoded JSON values (1 == 1.0 == True).
func pyEqual(a, b any) bool {
	if isNumber(a) && isNumber(b) {
		c, ok, _ := pyCompare("==", a, b)
		return ok && c == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case *pyjson.Object:
		y, ok := b.(*pyjson.Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for _, k := range x.Keys() {
			yv, ok := y.Get(k)
			if !ok || !pyEqual(x.Value(k), yv) {
				return false
			}
		}
		return true
	}
	return false
}
