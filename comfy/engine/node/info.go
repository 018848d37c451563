package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Info is a class's /object_info entry. It decodes from and encodes to the
// exact JSON ComfyUI serves, keeping key order, so the engine's /object_info
// matches a real server's.
type Info struct {
	Required []Input
	Optional []Input
	Hidden   []Hidden

	Output         []string
	OutputIsList   []bool
	OutputName     []string
	OutputTooltips []json.RawMessage // V3 classes only; nil entries encode as null

	Name         string
	DisplayName  *string // null for V3 classes without a display name
	Description  string
	PythonModule string
	Category     string
	OutputNode   bool

	// V3 (io.ComfyNode) classes carry these three flags; legacy classes omit them.
	Deprecated, Experimental, APINode *bool
}

// Input is one entry of input.required or input.optional.
type Input struct {
	Name string
	// Type is the declared type: "IMAGE", "MASK", "INT", "FLOAT", "STRING",
	// "BOOLEAN", "COMBO" (V3 combo, options inside Spec), a comma-separated union,
	// or "" for a legacy list combo whose values are in Options.
	Type string
	// Options are the allowed values of a combo: the legacy list, or the
	// "options" of a V3 COMBO's Spec.
	Options []string
	// Spec is the options dict exactly as served: {"default": …, "min": …};
	// nil when the server sends the type alone (["MASK"]).
	Spec json.RawMessage
}

// IsLegacyCombo says whether the input is a legacy list combo, whose membership
// ComfyUI checks at validation (V3 COMBOs are not checked in 0.3.64).
func (in *Input) IsLegacyCombo() bool { return in.Type == "" }

// Limits are the numeric bounds and default of an INT or FLOAT input.
type Limits struct {
	Default         any      `json:"default"`
	Min             *float64 `json:"min"`
	Max             *float64 `json:"max"`
	ControlAfterGen bool     `json:"control_after_generate"`
	ImageUpload     bool     `json:"image_upload"`
}

// Limits decodes the input's Spec. An empty or malformed Spec gives zero Limits.
func (in *Input) Limits() Limits {
	var l Limits
	if len(in.Spec) > 0 {
		_ = json.Unmarshal(in.Spec, &l)
	}
	return l
}

// Hidden is an entry of input.hidden, e.g. {"prompt": "PROMPT"}.
type Hidden struct{ Name, Type string }

// Input returns the required or optional input called name.
func (i *Info) Input(name string) (*Input, bool) {
	for _, group := range [][]Input{i.Required, i.Optional} {
		for k := range group {
			if group[k].Name == name {
				return &group[k], true
			}
		}
	}
	return nil, false
}

type rawInfo struct {
	Input struct {
		Required map[string]json.RawMessage `json:"required"`
		Optional map[string]json.RawMessage `json:"optional"`
		Hidden   map[string]string          `json:"hidden"`
	} `json:"input"`
	InputOrder struct {
		Required []string `json:"required"`
		Optional []string `json:"optional"`
		Hidden   []string `json:"hidden"`
	} `json:"input_order"`
	Output         []string          `json:"output"`
	OutputIsList   []bool            `json:"output_is_list"`
	OutputName     []string          `json:"output_name"`
	OutputTooltips []json.RawMessage `json:"output_tooltips"`
	Name           string            `json:"name"`
	DisplayName    *string           `json:"display_name"`
	Description    string            `json:"description"`
	PythonModule   string            `json:"python_module"`
	Category       string            `json:"category"`
	OutputNode     bool              `json:"output_node"`
	Deprecated     *bool             `json:"deprecated"`
	Experimental   *bool             `json:"experimental"`
	APINode        *bool             `json:"api_node"`
}

// UnmarshalJSON decodes an /object_info entry. Inputs are ordered by
// input_order, which ComfyUI 0.3.64 always sends.
func (i *Info) UnmarshalJSON(data []byte) error {
	var r rawInfo
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	var err error
	if i.Required, err = decodeInputs(r.Input.Required, r.InputOrder.Required); err != nil {
		return err
	}
	if i.Optional, err = decodeInputs(r.Input.Optional, r.InputOrder.Optional); err != nil {
		return err
	}
	i.Hidden = nil
	for _, name := range orderOf(r.Input.Hidden, r.InputOrder.Hidden) {
		i.Hidden = append(i.Hidden, Hidden{Name: name, Type: r.Input.Hidden[name]})
	}
	i.Output, i.OutputIsList, i.OutputName, i.OutputTooltips = r.Output, r.OutputIsList, r.OutputName, r.OutputTooltips
	i.Name, i.DisplayName, i.Description = r.Name, r.DisplayName, r.Description
	i.PythonModule, i.Category, i.OutputNode = r.PythonModule, r.Category, r.OutputNode
	i.Deprecated, i.Experimental, i.APINode = r.Deprecated, r.Experimental, r.APINode
	return nil
}

func orderOf[V any](m map[string]V, order []string) []string {
	if len(order) == len(m) {
		return order
	}
	// No usable input_order: fall back to sorted names.
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func decodeInputs(m map[string]json.RawMessage, order []string) ([]Input, error) {
	var out []Input
	for _, name := range orderOf(m, order) {
		raw, ok := m[name]
		if !ok {
			return nil, fmt.Errorf("input_order names %q, which is not an input", name)
		}
		in, err := decodeInput(name, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

func decodeInput(name string, raw json.RawMessage) (Input, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) == 0 {
		return Input{}, fmt.Errorf("input %q: want [TYPE, {options}], got %s", name, raw)
	}
	in := Input{Name: name}
	if len(parts) > 1 {
		in.Spec = append(json.RawMessage(nil), parts[1]...)
	}
	if err := json.Unmarshal(parts[0], &in.Type); err == nil {
		if in.Type == "COMBO" && len(in.Spec) > 0 {
			var s struct {
				Options []string `json:"options"`
			}
			if err := json.Unmarshal(in.Spec, &s); err != nil {
				return Input{}, fmt.Errorf("input %q: COMBO options: %w", name, err)
			}
			in.Options = s.Options
		}
		return in, nil
	}
	if err := json.Unmarshal(parts[0], &in.Options); err != nil {
		return Input{}, fmt.Errorf("input %q: type is neither a string nor a list of strings: %s", name, parts[0])
	}
	if in.Options == nil {
		in.Options = []string{}
	}
	return in, nil
}

// MarshalJSON encodes the entry with ComfyUI's key order.
func (i *Info) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	w := &objWriter{b: &b}
	b.WriteByte('{')

	w.key("input")
	b.WriteByte('{')
	in := &objWriter{b: &b}
	for _, g := range []struct {
		name   string
		inputs []Input
	}{{"required", i.Required}, {"optional", i.Optional}} {
		if g.inputs == nil {
			continue
		}
		in.key(g.name)
		if err := writeInputs(&b, g.inputs); err != nil {
			return nil, err
		}
	}
	if i.Hidden != nil {
		in.key("hidden")
		b.WriteByte('{')
		h := &objWriter{b: &b}
		for _, hd := range i.Hidden {
			h.key(hd.Name)
			h.value(hd.Type)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')

	w.key("input_order")
	b.WriteByte('{')
	ord := &objWriter{b: &b}
	for _, g := range []struct {
		name   string
		inputs []Input
	}{{"required", i.Required}, {"optional", i.Optional}} {
		if g.inputs == nil {
			continue
		}
		names := make([]string, len(g.inputs))
		for k, x := range g.inputs {
			names[k] = x.Name
		}
		ord.key(g.name)
		ord.value(names)
	}
	if i.Hidden != nil {
		names := make([]string, len(i.Hidden))
		for k, x := range i.Hidden {
			names[k] = x.Name
		}
		ord.key("hidden")
		ord.value(names)
	}
	b.WriteByte('}')

	w.field("output", nonNil(i.Output))
	w.field("output_is_list", nonNilBool(i.OutputIsList))
	w.field("output_name", nonNil(i.OutputName))
	if i.OutputTooltips != nil {
		w.key("output_tooltips")
		b.WriteByte('[')
		for k, t := range i.OutputTooltips {
			if k > 0 {
				b.WriteByte(',')
			}
			if len(t) == 0 {
				b.WriteString("null")
			} else {
				b.Write(t)
			}
		}
		b.WriteByte(']')
	}
	w.field("name", i.Name)
	w.field("display_name", i.DisplayName)
	w.field("description", i.Description)
	w.field("python_module", i.PythonModule)
	w.field("category", i.Category)
	w.field("output_node", i.OutputNode)
	if i.Deprecated != nil || i.Experimental != nil || i.APINode != nil {
		w.field("deprecated", i.Deprecated != nil && *i.Deprecated)
		w.field("experimental", i.Experimental != nil && *i.Experimental)
		w.field("api_node", i.APINode != nil && *i.APINode)
	}
	b.WriteByte('}')
	if w.err != nil {
		return nil, w.err
	}
	return b.Bytes(), nil
}

func writeInputs(b *bytes.Buffer, inputs []Input) error {
	b.WriteByte('{')
	w := &objWriter{b: b}
	for _, in := range inputs {
		w.key(in.Name)
		b.WriteByte('[')
		if in.IsLegacyCombo() {
			w.raw(nonNil(in.Options))
		} else {
			w.raw(in.Type)
		}
		if len(in.Spec) > 0 {
			b.WriteByte(',')
			b.Write(in.Spec)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return w.err
}

// WithOptions returns a copy of the entry whose combo inputs named in opts
// have those option lists (legacy lists, or the options of a V3 COMBO).
func (i *Info) WithOptions(opts map[string][]string) (*Info, error) {
	c := *i
	for _, group := range []*[]Input{&c.Required, &c.Optional} {
		inputs := append([]Input(nil), (*group)...)
		for k := range inputs {
			list, ok := opts[inputs[k].Name]
			if !ok {
				continue
			}
			inputs[k].Options = append([]string{}, list...)
			if inputs[k].Type == "COMBO" {
				spec, err := replaceKey(inputs[k].Spec, "options", list)
				if err != nil {
					return nil, fmt.Errorf("input %q: %w", inputs[k].Name, err)
				}
				inputs[k].Spec = spec
			}
		}
		*group = inputs
	}
	return &c, nil
}

// replaceKey replaces the value of key in the JSON object obj, keeping the order
// of the other keys.
func replaceKey(obj json.RawMessage, key string, value any) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("options dict is not an object")
	}
	var b bytes.Buffer
	w := &objWriter{b: &b}
	b.WriteByte('{')
	found := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		w.key(k)
		if k == key {
			found = true
			w.value(value)
		} else {
			b.Write(v)
		}
	}
	if !found {
		w.key(key)
		w.value(value)
	}
	b.WriteByte('}')
	return b.Bytes(), w.err
}

// objWriter writes the members of a JSON object, inserting commas.
type objWriter struct {
	b   *bytes.Buffer
	n   int
	err error
}

func (w *objWriter) key(k string) {
	if w.n > 0 {
		w.b.WriteByte(',')
	}
	w.n++
	w.raw(k)
	w.b.WriteByte(':')
}

func (w *objWriter) value(v any) { w.raw(v) }

func (w *objWriter) field(k string, v any) {
	w.key(k)
	w.raw(v)
}

func (w *objWriter) raw(v any) {
	data, err := json.Marshal(v)
	if err != nil && w.err == nil {
		w.err = err
	}
	w.b.Write(data)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBool(s []bool) []bool {
	if s == nil {
		return []bool{}
	}
	return s
}
