package comfy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ObjectInfo is a server's GET /object_info answer: node class name → schema.
// It tells Validate, ConvertUI and Manifest.Check what each class takes and
// returns.
type ObjectInfo map[string]*ClassInfo

// ClassInfo is the /object_info entry of one node class.
type ClassInfo struct {
	// Name is the class name used as class_type.
	Name string
	// DisplayName is the title the UI shows ("" when the server sends null).
	DisplayName string
	// Category is the UI menu path, e.g. "image/upscaling".
	Category string
	// Description is the class's help text.
	Description string
	// PythonModule is the module that defines the class ("nodes",
	// "custom_nodes.…").
	PythonModule string
	// Required and Optional are the inputs in the server's input_order.
	Required, Optional []InputSpec
	// Hidden are the hidden input names (filled by the server: PROMPT, …).
	Hidden []string
	// Output are the output types.
	Output []string
	// OutputName are the outputs' names.
	OutputName []string
	// OutputIsList says, per output, whether it is a list.
	OutputIsList []bool
	// OutputNode says the class is an output node (SaveImage, PreviewImage…):
	// ComfyUI runs only what output nodes need.
	OutputNode bool
}

// InputSpec is one declared input of a class.
type InputSpec struct {
	// Name is the input name.
	Name string
	// Type is the declared type: INT, FLOAT, STRING, BOOLEAN, IMAGE, MASK, …, a
	// comma-separated union, "*", or COMBO for both combo shapes (a legacy
	// bare list and the newer ["COMBO", {"options": …}]).
	Type string
	// Options are a combo's allowed values.
	Options []string
	// LegacyCombo says the combo was served as a bare list; ComfyUI 0.3.64
	// checks membership only for those.
	LegacyCombo bool
	// Default is the declared default value, raw.
	Default json.RawMessage
	// Min and Max are the declared numeric bounds, exact text ("" = none).
	Min, Max json.Number
	// ControlAfterGenerate marks seed-like INTs that the UI follows with a
	// fixed/increment/decrement/randomize widget.
	ControlAfterGenerate bool
	// Upload names the upload widget of a file combo: "image" (LoadImage),
	// "video", "audio", or "".
	Upload string
	// ForceInput says the input is always a socket, never a widget.
	ForceInput bool
	// Spec is the options object exactly as served (nil when absent).
	Spec json.RawMessage
}

// IsWidget says whether the UI shows the input as a widget (a value stored in
// widgets_values) rather than a socket only.
func (s *InputSpec) IsWidget() bool {
	if s.ForceInput {
		return false
	}
	switch s.Type {
	case "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO":
		return true
	}
	return false
}

// Input returns the required or optional input called name.
func (c *ClassInfo) Input(name string) (*InputSpec, bool) {
	for _, group := range [][]InputSpec{c.Required, c.Optional} {
		for i := range group {
			if group[i].Name == name {
				return &group[i], true
			}
		}
	}
	return nil, false
}

// IsRequired says whether name is a required input.
func (c *ClassInfo) IsRequired(name string) bool {
	for i := range c.Required {
		if c.Required[i].Name == name {
			return true
		}
	}
	return false
}

// Inputs returns the required then the optional inputs, in input_order.
func (c *ClassInfo) Inputs() []InputSpec {
	return append(slices.Clip(c.Required), c.Optional...)
}

// Class returns the entry of class name.
func (oi ObjectInfo) Class(name string) (*ClassInfo, bool) {
	c, ok := oi[name]
	return c, ok && c != nil
}

// Classes returns the class names, sorted.
func (oi ObjectInfo) Classes() []string {
	return slices.Sorted(maps.Keys(oi))
}

// Merge adds the classes of other to oi (other wins on conflicts).
func (oi ObjectInfo) Merge(other ObjectInfo) {
	maps.Copy(oi, other)
}

// ParseObjectInfo decodes an /object_info answer (all classes, or the
// single-class /object_info/{class} form). Both combo shapes are accepted.
func ParseObjectInfo(data []byte) (ObjectInfo, error) {
	ms, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("object_info: %w", err)
	}
	oi := make(ObjectInfo, len(ms))
	for _, m := range ms {
		c, err := parseClassInfo(m.Key, m.Value)
		if err != nil {
			return nil, fmt.Errorf("object_info: class %s: %w", m.Key, err)
		}
		oi[m.Key] = c
	}
	return oi, nil
}

type rawClassInfo struct {
	Input struct {
		Required json.RawMessage            `json:"required"`
		Optional json.RawMessage            `json:"optional"`
		Hidden   map[string]json.RawMessage `json:"hidden"`
	} `json:"input"`
	InputOrder struct {
		Required []string `json:"required"`
		Optional []string `json:"optional"`
		Hidden   []string `json:"hidden"`
	} `json:"input_order"`
	Output       []json.RawMessage `json:"output"`
	OutputIsList []bool            `json:"output_is_list"`
	OutputName   []string          `json:"output_name"`
	Name         string            `json:"name"`
	DisplayName  *string           `json:"display_name"`
	Description  string            `json:"description"`
	PythonModule string            `json:"python_module"`
	Category     string            `json:"category"`
	OutputNode   bool              `json:"output_node"`
}

func parseClassInfo(name string, data json.RawMessage) (*ClassInfo, error) {
	var r rawClassInfo
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("want an object_info entry: %v", err)
	}
	c := &ClassInfo{
		Name: r.Name, Description: r.Description, PythonModule: r.PythonModule,
		Category: r.Category, OutputNode: r.OutputNode, OutputName: r.OutputName, OutputIsList: r.OutputIsList,
	}
	if c.Name == "" {
		c.Name = name
	}
	if r.DisplayName != nil {
		c.DisplayName = *r.DisplayName
	}
	for _, o := range r.Output {
		// Outputs are type names; a combo output is served as a list.
		var s string
		if json.Unmarshal(o, &s) != nil {
			s = "COMBO"
		}
		c.Output = append(c.Output, s)
	}
	var err error
	if c.Required, err = parseInputGroup(r.Input.Required, r.InputOrder.Required); err != nil {
		return nil, fmt.Errorf("required inputs: %w", err)
	}
	if c.Optional, err = parseInputGroup(r.Input.Optional, r.InputOrder.Optional); err != nil {
		return nil, fmt.Errorf("optional inputs: %w", err)
	}
	c.Hidden = r.InputOrder.Hidden
	if len(c.Hidden) != len(r.Input.Hidden) {
		c.Hidden = slices.Sorted(maps.Keys(r.Input.Hidden))
	}
	return c, nil
}

func parseInputGroup(raw json.RawMessage, order []string) ([]InputSpec, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	ms, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]json.RawMessage, len(ms))
	var docOrder []string
	for _, m := range ms {
		if _, dup := byName[m.Key]; !dup {
			docOrder = append(docOrder, m.Key)
		}
		byName[m.Key] = m.Value
	}
	names := docOrder
	if len(order) == len(byName) {
		ok := true
		for _, n := range order {
			if _, in := byName[n]; !in {
				ok = false
			}
		}
		if ok {
			names = order
		}
	}
	out := make([]InputSpec, 0, len(names))
	for _, n := range names {
		s, err := parseInputSpec(n, byName[n])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func parseInputSpec(name string, raw json.RawMessage) (InputSpec, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) == 0 {
		return InputSpec{}, fmt.Errorf("input %q: want [TYPE, {options}], got %s", name, kindOf(raw))
	}
	s := InputSpec{Name: name}
	if len(parts) > 1 && kindOf(parts[1]) == "an object" {
		s.Spec = parts[1]
		var o struct {
			Default              json.RawMessage `json:"default"`
			Min                  json.RawMessage `json:"min"`
			Max                  json.RawMessage `json:"max"`
			ControlAfterGenerate bool            `json:"control_after_generate"`
			ImageUpload          bool            `json:"image_upload"`
			VideoUpload          bool            `json:"video_upload"`
			AudioUpload          bool            `json:"audio_upload"`
			ForceInput           bool            `json:"forceInput"`
			Options              json.RawMessage `json:"options"`
		}
		if err := json.Unmarshal(parts[1], &o); err != nil {
			return InputSpec{}, fmt.Errorf("input %q: options: %v", name, err)
		}
		s.Default = o.Default
		if n, ok := Value(o.Min).Number(); ok {
			s.Min = n
		}
		if n, ok := Value(o.Max).Number(); ok {
			s.Max = n
		}
		s.ControlAfterGenerate = o.ControlAfterGenerate
		s.ForceInput = o.ForceInput
		switch {
		case o.ImageUpload:
			s.Upload = "image"
		case o.VideoUpload:
			s.Upload = "video"
		case o.AudioUpload:
			s.Upload = "audio"
		}
		if len(o.Options) > 0 {
			s.Options = stringList(o.Options)
		}
	}
	var typ string
	if err := json.Unmarshal(parts[0], &typ); err == nil {
		s.Type = typ
		return s, nil
	}
	if kindOf(parts[0]) != "an array" {
		return InputSpec{}, fmt.Errorf("input %q: the type is neither a string nor a list of options", name)
	}
	s.Type, s.LegacyCombo = "COMBO", true
	s.Options = stringList(parts[0])
	return s, nil
}

// stringList decodes a list of option values; numbers and booleans are kept
// as their JSON text so they compare with workflow values.
func stringList(raw json.RawMessage) []string {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := Value(it).Text(); ok {
			out = append(out, s)
		} else {
			out = append(out, string(it))
		}
	}
	return out
}

// typesCompatible reports whether an output of type out may feed an input of
// type in, as ComfyUI's validate_node_input decides: equal, either is "*", or
// the comma-separated unions overlap.
func typesCompatible(out, in string) bool {
	if out == in || out == "*" || in == "*" {
		return true
	}
	if in == "COMBO" || out == "COMBO" {
		return true
	}
	outs := strings.Split(out, ",")
	for _, t := range strings.Split(in, ",") {
		if slices.Contains(outs, strings.TrimSpace(t)) {
			return true
		}
	}
	return false
}
