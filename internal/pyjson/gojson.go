package pyjson

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
)

// ToGo converts a parsed value to plain Go values for code that does not
// care about key order: *Object becomes map[string]any and array elements
// are converted; numbers stay int64, *big.Int or float64.
func ToGo(v any) any {
	switch x := v.(type) {
	case *Object:
		m := make(map[string]any, len(x.keys))
		for _, k := range x.keys {
			m[k] = ToGo(x.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = ToGo(x[i])
		}
		return out
	}
	return v
}

// FromGo converts a Go value to the package's value model. Floats stay floats
// (16.0 is written 16.0, as Python would), map keys are sorted (Go maps have
// no order), json.Number and json.RawMessage are parsed (a raw object keeps
// its key order), and structs go through encoding/json so that their tags and
// field order are honoured. A value encoding/json cannot encode becomes its
// fmt.Sprint string.
func FromGo(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, float64, *Object, *big.Int:
		return v
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = FromGo(x[i])
		}
		return out
	case int:
		return int64(x)
	case float32:
		return float64(x)
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case json.Number:
		switch n, _ := Parse([]byte(x)); n.(type) {
		case int64, *big.Int, float64:
			return n
		}
		return string(x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := NewObject()
		for _, k := range keys {
			o.Set(k, FromGo(x[k]))
		}
		return o
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return new(big.Int).SetUint64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.Bool:
		return rv.Bool()
	case reflect.String:
		return rv.String()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			break // []byte: encoding/json's base64; json.RawMessage: itself
		}
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = FromGo(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			if rv.IsNil() {
				return nil
			}
			keys := rv.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			o := NewObject()
			for _, k := range keys {
				o.Set(k.String(), FromGo(rv.MapIndex(k).Interface()))
			}
			return o
		}
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	pv, err := Parse(data)
	if err != nil {
		return string(data)
	}
	return pv
}
