package comfy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Link is a connection from another node's output, written in the API format
// as ["<node id>", <output index>].
type Link struct {
	// Node is the id of the node whose output feeds the input.
	Node string
	// Output is the index of that node's output (0 for the first).
	Output int
}

// MarshalJSON encodes the link the way ComfyUI expects it.
func (l Link) MarshalJSON() ([]byte, error) {
	b := appendString([]byte{'['}, l.Node)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(l.Output), 10)
	return append(b, ']'), nil
}

// String formats the link as node:output, for messages.
func (l Link) String() string { return fmt.Sprintf("%s:%d", l.Node, l.Output) }

// Value is the raw JSON of one node input: a constant (number, string,
// boolean, {"__value__": [...]} list) or a link. Numbers keep the exact text
// they were written with, so 1.0 stays 1.0 and a 20-digit seed stays exact.
type Value json.RawMessage

// MarshalJSON returns the value as is.
func (v Value) MarshalJSON() ([]byte, error) {
	if len(v) == 0 {
		return []byte("null"), nil
	}
	return v, nil
}

// Raw returns the value's JSON text.
func (v Value) Raw() json.RawMessage { return json.RawMessage(v) }

// IsLink says whether the value is a JSON array, which ComfyUI always treats
// as a link (even a malformed one).
func (v Value) IsLink() bool {
	t := bytes.TrimSpace(v)
	return len(t) > 0 && t[0] == '['
}

// Link decodes the value as a link. ok is false when the value is not a
// well-formed [string, non-negative integer] pair.
func (v Value) Link() (l Link, ok bool) {
	l, err := parseLink(json.RawMessage(v))
	return l, err == nil
}

// parseLink decodes a link and says precisely what is wrong with a bad one.
func parseLink(raw json.RawMessage) (Link, error) {
	if l, ok := fastLink(raw); ok {
		return l, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return Link{}, errors.New("a link must be a JSON array")
	}
	if len(parts) != 2 {
		return Link{}, fmt.Errorf(`a link must be ["<node id>", <output index>], got %d elements (wrap a literal list as {"__value__": [...]})`, len(parts))
	}
	var l Link
	if err := json.Unmarshal(parts[0], &l.Node); err != nil {
		return Link{}, fmt.Errorf(`the node id of a link must be a string (write "%s"), got %s`, bytes.Trim(parts[0], `"`), kindOf(parts[0]))
	}
	if l.Node == "" {
		return Link{}, errors.New("the node id of a link is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(parts[1]))
	dec.UseNumber()
	var n json.Number
	if err := dec.Decode(&n); err != nil {
		return Link{}, fmt.Errorf("the output index of a link must be an integer, got %s", kindOf(parts[1]))
	}
	i, err := strconv.ParseInt(n.String(), 10, 32)
	if err != nil || i < 0 {
		return Link{}, fmt.Errorf("the output index of a link must be a non-negative integer, got %s", n)
	}
	l.Output = int(i)
	return l, nil
}

// String returns the value's JSON text, for printing.
func (v Value) String() string { return string(v) }

// Text decodes the value as a JSON string; ok is false for any other kind.
func (v Value) Text() (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// Number returns the value's exact number text.
func (v Value) Number() (json.Number, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || (t[0] != '-' && (t[0] < '0' || t[0] > '9')) {
		return "", false
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return "", false
	}
	return n, true
}

// Bool decodes the value as a JSON boolean.
func (v Value) Bool() (b, ok bool) {
	switch string(bytes.TrimSpace(v)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// ListLiteral decodes a literal list written as {"__value__": [...]}.
func (v Value) ListLiteral() ([]json.RawMessage, bool) {
	var w struct {
		V *[]json.RawMessage `json:"__value__"`
	}
	if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &w) != nil || w.V == nil {
		return nil, false
	}
	return *w.V, true
}

// valueOf encodes a Go value as an input Value. Links stay links; any other
// slice or array is wrapped as {"__value__": [...]} because ComfyUI reads
// every bare list as a link.
func valueOf(x any) (Value, error) {
	switch t := x.(type) {
	case Value:
		if !json.Valid(t) {
			return nil, errors.New("not valid JSON")
		}
		return Value(compactRaw(json.RawMessage(t))), nil
	case Link:
		b, _ := t.MarshalJSON()
		return Value(b), nil
	case *Link:
		b, _ := t.MarshalJSON()
		return Value(b), nil
	}
	raw, err := marshalValue(x)
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 && raw[0] == '[' {
		if _, isLinkShape := Value(raw).Link(); !isLinkShape {
			raw = append(append([]byte(`{"__value__":`), raw...), '}')
		} else if _, explicitRaw := x.(json.RawMessage); !explicitRaw {
			// A Go list that happens to look like a link is still a literal.
			raw = append(append([]byte(`{"__value__":`), raw...), '}')
		}
	}
	return Value(raw), nil
}

// maxNumberText and maxExponent bound the numbers compared exactly: big.Rat
// would otherwise expand "1e999999999" into a billion digits.
const (
	maxNumberText = 1024
	maxExponent   = 1024
)

// parseRat converts JSON number text to an exact rational. It refuses
// numbers too long or with too large an exponent to handle exactly.
func parseRat(s string) (*big.Rat, bool) {
	if len(s) == 0 || len(s) > maxNumberText {
		return nil, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

// fastLink decodes the common compact form ["id",n] without allocating
// more than the id; anything else goes the slow way.
func fastLink(raw []byte) (Link, bool) {
	if len(raw) < 6 || raw[0] != '[' || raw[1] != '"' || raw[len(raw)-1] != ']' {
		return Link{}, false
	}
	q := bytes.IndexByte(raw[2:], '"')
	if q <= 0 {
		return Link{}, false
	}
	id := raw[2 : 2+q]
	for _, c := range id {
		if c == '\\' || c < 0x20 {
			return Link{}, false // escapes, or not valid JSON
		}
	}
	if !utf8.Valid(id) {
		return Link{}, false
	}
	rest := raw[2+q+1 : len(raw)-1]
	if len(rest) < 2 || rest[0] != ',' {
		return Link{}, false
	}
	n := 0
	for _, c := range rest[1:] {
		if c < '0' || c > '9' || n > 1<<30 {
			return Link{}, false
		}
		n = n*10 + int(c-'0')
	}
	if len(rest) > 2 && rest[1] == '0' {
		return Link{}, false // leading zero: not valid JSON
	}
	return Link{Node: string(id), Output: n}, true
}
