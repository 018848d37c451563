// Package pyjson handles JSON the way Python's json module does, for the
// parts of the module that must be byte-for-byte what a Python program would
// write or read: ComfyUI's answers, the prompt text SaveImage stores in a PNG,
// and runpod-python's log lines.
//
// Parse keeps what encoding/json loses: objects keep their key order (as a
// Python dict does), numbers keep the int/float distinction (1 and 1.0 are
// different values), integers are unbounded, and NaN, Infinity and -Infinity
// are accepted. A parsed value is one of:
//
//	nil       JSON null (Python None)
//	bool      true/false
//	string
//	int64     an integer that fits
//	*big.Int  a larger integer
//	float64   a number written with a fraction or exponent
//	*Object   an object, keys in order
//	[]any     an array
//
// Marshal and Append encode such values (and plain Go values, through FromGo)
// with json.dumps's defaults: ", " and ": " separators, ensure_ascii escaping
// (AppendString), floats spelled as repr(float) (FormatFloat), NaN and
// Infinity written as JavaScript literals.
package pyjson

import "iter"

// Object is a JSON object that keeps its key order, like a Python dict.
type Object struct {
	keys []string
	vals map[string]any
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{vals: map[string]any{}} }

// Set stores v under k and returns o, so that calls chain. An existing key
// keeps its position, as in Python.
func (o *Object) Set(k string, v any) *Object {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	return o
}

// Get returns the value under k and whether k is present.
func (o *Object) Get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// Value returns the value under k, or nil (JSON null) when k is absent, like
// Python's dict.get.
func (o *Object) Value(k string) any { return o.vals[k] }

// Has reports whether k is present.
func (o *Object) Has(k string) bool { _, ok := o.vals[k]; return ok }

// Len returns the number of keys.
func (o *Object) Len() int { return len(o.keys) }

// Keys returns the keys in order. The slice belongs to o: callers must not
// modify it.
func (o *Object) Keys() []string { return o.keys }

// All iterates over the keys and values in order.
func (o *Object) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for _, k := range o.keys {
			if !yield(k, o.vals[k]) {
				return
			}
		}
	}
}

// Delete removes k, keeping the order of the other keys.
func (o *Object) Delete(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}
