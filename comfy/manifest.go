package comfy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/comfypod/comfypod/internal/bytesize"
	"github.com/comfypod/comfypod/internal/suggest"
	"github.com/comfypod/comfypod/internal/truncate"
)

// ParamType is the type of a manifest param.
type ParamType string

// The param types a manifest may declare.
const (
	ParamInt    ParamType = "int"    // an integer (seeds up to 2^64-1 stay exact)
	ParamFloat  ParamType = "float"  // a number
	ParamString ParamType = "string" // text
	ParamBool   ParamType = "bool"   // true or false
	ParamEnum   ParamType = "enum"   // one of Options
	ParamImage  ParamType = "image"  // an uploaded image; its name goes into a LoadImage input
	ParamMask   ParamType = "mask"   // an uploaded mask; its name goes into a LoadImage/LoadImageMask input
	ParamVideo  ParamType = "video"  // an uploaded video; its name goes into a VHS_LoadVideo/LoadVideo input
	ParamAudio  ParamType = "audio"  // an uploaded audio file; its name goes into a LoadAudio input
	ParamFile   ParamType = "file"   // an uploaded file of the kinds in Media; its name goes into any file input
)

var paramTypes = []ParamType{ParamInt, ParamFloat, ParamString, ParamBool, ParamEnum, ParamImage, ParamMask, ParamVideo, ParamAudio, ParamFile}

// The kinds of media a file param takes (Param.Media, Param.Accepts) and a
// file input loads (FileInput.Kind).
const (
	MediaImage = "image"
	MediaVideo = "video"
	MediaAudio = "audio"
)

var mediaKinds = []string{MediaImage, MediaVideo, MediaAudio}

// RandomValue is the value a random-capable int param takes to ask for a
// fresh random number ("seed": "random").
const RandomValue = "random"

// Manifest is a package manifest: it names the inputs a caller may set on a
// package's workflows and binds each name to node inputs, so callers send
// {"seed": 42, "prompt": "…"} instead of patching node "689" by hand. The
// format is documented in docs/manifest.md.
type Manifest struct {
	// Name is the package name (informative).
	Name string
	// Description says what the package does (informative).
	Description string

	workflows []member // name → file, in document order; the first is the default
	params    []*Param
}

// Param is one named input of a package.
type Param struct {
	// Name is what callers send ("seed", "prompt", "target").
	Name string
	// Type is the value's type.
	Type ParamType
	// Description documents the param for callers.
	Description string
	// Required means a call without this param is refused.
	Required bool
	// Default is used when a call omits the param (nil: keep the workflow's
	// own value). For a Random param it may be "random".
	Default json.RawMessage
	// Min and Max bound int and float values ("" = unbounded).
	Min, Max json.Number
	// Options are the allowed values of an enum.
	Options []string
	// MaxLength bounds a string's length in characters (0 = unbounded).
	MaxLength int
	// MaxSide bounds an image's or mask's width and height in pixels (0 =
	// unbounded); callers check it with CheckImageSize once they know the size.
	MaxSide int
	// MaxBytes bounds the size of a file param's file (0 = the worker's own
	// limits only); callers check it with CheckFileSize.
	MaxBytes int64
	// MaxSeconds bounds the length of a video, audio or file param's file
	// (0 = unbounded); callers check it with CheckDuration when the file
	// states its length.
	MaxSeconds float64
	// Media are the kinds of file a file param takes ("image", "video",
	// "audio"); empty means all three. Only ParamFile has it: the other file
	// types take their own kind (see Accepts).
	Media []string
	// Random lets an int param take the value "random": a fresh number within
	// Min..Max (capped at MaxSafeSeed) for each call.
	Random bool
	// Bindings are where the value goes, per workflow name. A param may bind
	// to several nodes; an empty list means the workflow does not use it.
	Bindings map[string][]Binding
}

// Binding is one place a param's value is written: an input of a node that
// must have the given class.
type Binding struct {
	// Node is the node id ("689").
	Node string `json:"node"`
	// Input is the input name ("seed").
	Input string `json:"input"`
	// ClassType is the class the node must have ("KSampler"); a mismatch
	// means the workflow changed under the manifest.
	ClassType string `json:"class_type"`
}

// ErrInvalidManifest is matched by every error about the manifest file itself.
var ErrInvalidManifest = errors.New("invalid manifest")

// ErrInvalidParams is matched by errors about a call's params or a binding
// that does not fit the workflow (*ParamsError).
var ErrInvalidParams = errors.New("invalid params")

// ManifestError lists every problem of a manifest file, each prefixed with
// where it is ("params[2] (seed).bind.default[0].node"). It matches
// ErrInvalidManifest.
type ManifestError struct {
	// Problems are every problem found, each with its location.
	Problems []string
}

// Error lists the problems, one per line.
func (e *ManifestError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid manifest: " + e.Problems[0]
	}
	return fmt.Sprintf("invalid manifest (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Is makes errors.Is(err, ErrInvalidManifest) true.
func (e *ManifestError) Is(target error) bool { return target == ErrInvalidManifest }

// ParseManifest decodes and checks a manifest. Every problem is reported, with
// the path to it; unknown fields are errors (they are usually typos).
func ParseManifest(data []byte) (*Manifest, error) {
	p := &manifestParser{}
	m := p.parse(bytes.TrimPrefix(bytes.TrimSpace(data), []byte("\xef\xbb\xbf")))
	if len(p.problems) > 0 {
		return nil, &ManifestError{Problems: p.problems}
	}
	return m, nil
}

type manifestParser struct {
	problems []string
}

func (p *manifestParser) addf(where, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if where != "" {
		msg = where + ": " + msg
	}
	p.problems = append(p.problems, msg)
}

// object decodes an object and reports duplicate and unknown keys.
func (p *manifestParser) object(where string, raw json.RawMessage, known ...string) map[string]json.RawMessage {
	if kindOf(raw) != "an object" {
		p.addf(where, "want an object, got %s", kindOf(raw))
		return nil
	}
	ms, err := decodeObject(raw)
	if err != nil {
		p.addf(where, "%v", err)
		return nil
	}
	out := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		if _, dup := out[m.Key]; dup {
			p.addf(where, "field %q appears twice", m.Key)
		}
		out[m.Key] = m.Value
	}
	if known != nil {
		p.unknown(where, ms, known)
	}
	return out
}

// unknown reports fields not in known, with a guess at the intended one.
func (p *manifestParser) unknown(where string, ms []member, known []string) {
	for _, m := range ms {
		if slices.Contains(known, m.Key) {
			continue
		}
		hint := ""
		if s := suggest.Closest(m.Key, known, 2); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		p.addf(where, "unknown field %q%s; known fields: %s", m.Key, hint, strings.Join(known, ", "))
	}
}

func (p *manifestParser) str(where string, raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.addf(where, "want a string, got %s", kindOf(raw))
	}
	return s
}

func (p *manifestParser) parse(data []byte) *Manifest {
	if len(data) == 0 {
		p.addf("", "the manifest is empty")
		return nil
	}
	if !json.Valid(data) {
		_, err := decodeObject(data)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		p.addf("", "%v", err)
		return nil
	}
	top := p.object("", data, "name", "description", "workflows", "params", "$schema")
	if top == nil {
		return nil
	}
	m := &Manifest{}
	if raw, ok := top["name"]; ok {
		m.Name = p.str("name", raw)
	}
	if raw, ok := top["description"]; ok {
		m.Description = p.str("description", raw)
	}
	if raw, ok := top["workflows"]; !ok {
		p.addf("", `"workflows" is missing: name each workflow file, e.g. "workflows": {"default": "workflow_api.json"}`)
	} else if kindOf(raw) != "an object" {
		p.addf("workflows", "want an object of name → file, got %s", kindOf(raw))
	} else {
		ms, err := decodeObject(raw)
		if err != nil {
			p.addf("workflows", "%v", err)
		}
		seen := map[string]bool{}
		for _, wm := range ms {
			where := "workflows." + wm.Key
			if seen[wm.Key] {
				p.addf(where, "appears twice")
				continue
			}
			seen[wm.Key] = true
			if !validName(wm.Key) {
				p.addf(where, "a workflow name may hold letters, digits, '_' and '-'")
			}
			file := p.str(where, wm.Value)
			if file == "" || path.IsAbs(file) || strings.Contains(file, `\`) || slices.Contains(strings.Split(file, "/"), "..") {
				p.addf(where, "want a relative file path inside the package (forward slashes, no ..), got %q", file)
			}
			m.workflows = append(m.workflows, member{Key: wm.Key, Value: appendString(nil, file)})
		}
		if len(ms) == 0 && err == nil {
			p.addf("workflows", "name at least one workflow")
		}
	}
	raw, ok := top["params"]
	if !ok {
		return m
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.addf("params", "want a list of params, got %s", kindOf(raw))
		return m
	}
	names := map[string]bool{}
	for i, it := range items {
		prm := p.param(fmt.Sprintf("params[%d]", i), it, m)
		if prm == nil {
			continue
		}
		if names[prm.Name] {
			p.addf(fmt.Sprintf("params[%d] (%s)", i, prm.Name), "another param has the same name")
		}
		names[prm.Name] = true
		m.params = append(m.params, prm)
	}
	p.checkConflicts(m)
	return m
}

var paramFields = []string{"name", "type", "description", "required", "default", "min", "max", "options", "max_length", "max_side", "max_bytes", "max_seconds", "media", "random", "bind"}

// fileTypes are the param types whose value is an uploaded file.
var fileTypes = []ParamType{ParamImage, ParamMask, ParamVideo, ParamAudio, ParamFile}

func (p *manifestParser) param(where string, raw json.RawMessage, m *Manifest) *Param {
	f := p.object(where, raw)
	if f == nil {
		return nil
	}
	defer func() {
		ms, _ := decodeObject(raw)
		p.unknown(where, ms, paramFields)
	}()
	prm := &Param{}
	if r, ok := f["name"]; !ok {
		p.addf(where, `"name" is missing`)
	} else {
		prm.Name = p.str(where+".name", r)
		if prm.Name != "" && !validName(prm.Name) {
			p.addf(where+".name", "%q: a param name may hold letters, digits, '_' and '-' and must start with a letter", prm.Name)
		}
	}
	if prm.Name != "" {
		where = fmt.Sprintf("%s (%s)", where, prm.Name)
	}
	if r, ok := f["type"]; !ok {
		p.addf(where, `"type" is missing; one of %s`, typeList())
	} else {
		prm.Type = ParamType(p.str(where+".type", r))
		if !slices.Contains(paramTypes, prm.Type) && prm.Type != "" {
			p.addf(where+".type", "unknown type %q; one of %s", prm.Type, typeList())
		}
	}
	if r, ok := f["description"]; ok {
		prm.Description = p.str(where+".description", r)
	}
	if r, ok := f["required"]; ok {
		if err := json.Unmarshal(r, &prm.Required); err != nil {
			p.addf(where+".required", "want true or false, got %s", kindOf(r))
		}
	}
	if r, ok := f["random"]; ok {
		if err := json.Unmarshal(r, &prm.Random); err != nil {
			p.addf(where+".random", "want true or false, got %s", kindOf(r))
		}
		if prm.Random && prm.Type != ParamInt {
			p.addf(where+".random", "only int params may be random")
		}
	}
	for _, lim := range []struct {
		key string
		dst *json.Number
	}{{"min", &prm.Min}, {"max", &prm.Max}} {
		r, ok := f[lim.key]
		if !ok {
			continue
		}
		n, isNum := Value(r).Number()
		if !isNum {
			p.addf(where+"."+lim.key, "want a number, got %s", kindOf(r))
			continue
		}
		if prm.Type != ParamInt && prm.Type != ParamFloat {
			p.addf(where+"."+lim.key, "only int and float params have %s", lim.key)
		}
		if _, ok := parseRat(n.String()); !ok {
			p.addf(where+"."+lim.key, "%s is too large", truncate.Runes(n.String(), 40))
			continue
		}
		if prm.Type == ParamInt && !isInteger(n) {
			p.addf(where+"."+lim.key, "an int param's %s must be an integer, got %s", lim.key, n)
		}
		*lim.dst = n
	}
	if prm.Min != "" && prm.Max != "" && ratOf(prm.Min).Cmp(ratOf(prm.Max)) > 0 {
		p.addf(where, "min %s is above max %s", prm.Min, prm.Max)
	}
	if r, ok := f["options"]; ok {
		if err := json.Unmarshal(r, &prm.Options); err != nil {
			p.addf(where+".options", "want a list of strings, got %s", kindOf(r))
		}
		if prm.Type != ParamEnum {
			p.addf(where+".options", "only enum params have options")
		}
		seen := map[string]bool{}
		for _, o := range prm.Options {
			if seen[o] {
				p.addf(where+".options", "%q is listed twice", o)
			}
			seen[o] = true
		}
	}
	if prm.Type == ParamEnum && len(prm.Options) == 0 {
		p.addf(where, `an enum param needs "options"`)
	}
	for _, lim := range []struct {
		key   string
		dst   *int
		types []ParamType
	}{{"max_length", &prm.MaxLength, []ParamType{ParamString}}, {"max_side", &prm.MaxSide, []ParamType{ParamImage, ParamMask}}} {
		r, ok := f[lim.key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(r, lim.dst); err != nil || *lim.dst <= 0 {
			p.addf(where+"."+lim.key, "want a positive integer, got %s", r)
		}
		if !slices.Contains(lim.types, prm.Type) {
			p.addf(where+"."+lim.key, "only %s params have %s", lim.types[0], lim.key)
		}
	}
	if r, ok := f["max_bytes"]; ok {
		if err := json.Unmarshal(r, &prm.MaxBytes); err != nil || prm.MaxBytes <= 0 {
			p.addf(where+".max_bytes", "want a positive integer (bytes), got %s", r)
		}
		if !prm.IsFile() {
			p.addf(where+".max_bytes", "only file params (image, mask, video, audio, file) have max_bytes")
		}
	}
	if r, ok := f["max_seconds"]; ok {
		if err := json.Unmarshal(r, &prm.MaxSeconds); err != nil || prm.MaxSeconds <= 0 {
			p.addf(where+".max_seconds", "want a positive number of seconds, got %s", r)
		}
		if prm.Type != ParamVideo && prm.Type != ParamAudio && prm.Type != ParamFile {
			p.addf(where+".max_seconds", "only video, audio and file params have max_seconds")
		}
	}
	if r, ok := f["media"]; ok {
		if err := json.Unmarshal(r, &prm.Media); err != nil {
			p.addf(where+".media", "want a list of kinds (%s), got %s", strings.Join(mediaKinds, ", "), kindOf(r))
		}
		if prm.Type != ParamFile {
			p.addf(where+".media", "only file params have media (the other file types take their own kind)")
		}
		if len(prm.Media) == 0 && kindOf(r) == "an array" {
			p.addf(where+".media", "is empty: list the kinds the param takes (%s), or leave media out for all of them", strings.Join(mediaKinds, ", "))
		}
		seen := map[string]bool{}
		for _, k := range prm.Media {
			if !slices.Contains(mediaKinds, k) {
				p.addf(where+".media", "unknown kind %q; one of %s", k, strings.Join(mediaKinds, ", "))
			}
			if seen[k] {
				p.addf(where+".media", "%q is listed twice", k)
			}
			seen[k] = true
		}
	}
	if r, ok := f["default"]; ok {
		prm.Default = r
		if slices.Contains(paramTypes, prm.Type) {
			if _, err := prm.value(r, nil); err != nil {
				p.addf(where+".default", "%v", err)
			}
		}
		if prm.Required {
			p.addf(where, "a required param cannot have a default (drop one of them)")
		}
	}
	if r, ok := f["bind"]; !ok {
		p.addf(where, `"bind" is missing: say where the value goes, e.g. "bind": {"default": [{"node": "689", "input": "seed", "class_type": "KSampler"}]}`)
	} else {
		prm.Bindings = p.bindings(where+".bind", r, m)
	}
	return prm
}

func (p *manifestParser) bindings(where string, raw json.RawMessage, m *Manifest) map[string][]Binding {
	if kindOf(raw) != "an object" {
		p.addf(where, "want an object of workflow name → list of {node, input, class_type}, got %s", kindOf(raw))
		return nil
	}
	ms, err := decodeObject(raw)
	if err != nil {
		p.addf(where, "%v", err)
		return nil
	}
	out := map[string][]Binding{}
	for _, wm := range ms {
		w := where + "." + wm.Key
		if _, dup := out[wm.Key]; dup {
			p.addf(w, "appears twice")
			continue
		}
		if _, ok := m.workflowFile(wm.Key); !ok && len(m.workflows) > 0 {
			p.addf(w, "no workflow is called %q; the workflows are %s", wm.Key, strings.Join(m.Workflows(), ", "))
		}
		var items []json.RawMessage
		if err := json.Unmarshal(wm.Value, &items); err != nil {
			p.addf(w, "want a list of {node, input, class_type}, got %s", kindOf(wm.Value))
			continue
		}
		list := make([]Binding, 0, len(items))
		for i, it := range items {
			bw := fmt.Sprintf("%s[%d]", w, i)
			f := p.object(bw, it, "node", "input", "class_type")
			if f == nil {
				continue
			}
			var b Binding
			if r, ok := f["node"]; !ok {
				p.addf(bw, `"node" is missing`)
			} else if n, isNum := Value(r).Number(); isNum {
				if !isInteger(n) || strings.HasPrefix(n.String(), "-") {
					p.addf(bw+".node", "a node id is a string such as \"689\", got %s", n)
				}
				b.Node = n.String()
			} else {
				b.Node = p.str(bw+".node", r)
			}
			if r, ok := f["input"]; !ok {
				p.addf(bw, `"input" is missing`)
			} else {
				b.Input = p.str(bw+".input", r)
			}
			if r, ok := f["class_type"]; !ok {
				p.addf(bw, `"class_type" is missing: name the class node %s must have, so a changed workflow is caught`, b.Node)
			} else {
				b.ClassType = p.str(bw+".class_type", r)
			}
			if b.Node == "" || b.Input == "" || b.ClassType == "" {
				if _, ok := f["node"]; ok && b.Node == "" {
					p.addf(bw+".node", "is empty")
				}
				if _, ok := f["input"]; ok && b.Input == "" {
					p.addf(bw+".input", "is empty")
				}
				if _, ok := f["class_type"]; ok && b.ClassType == "" {
					p.addf(bw+".class_type", "is empty")
				}
			}
			if slices.Contains(list, b) {
				p.addf(bw, "the same binding is listed twice")
			}
			list = append(list, b)
		}
		out[wm.Key] = list
	}
	for _, name := range m.Workflows() {
		if _, ok := out[name]; !ok {
			p.addf(where, "no binding for workflow %q; write \"%s\": [] if the param is not used there", name, name)
		}
	}
	return out
}

// checkConflicts reports two params writing the same node input.
func (p *manifestParser) checkConflicts(m *Manifest) {
	type key struct{ wf, node, input string }
	owner := map[key]string{}
	for _, prm := range m.params {
		for wf, list := range prm.Bindings {
			for _, b := range list {
				k := key{wf, b.Node, b.Input}
				if other, ok := owner[k]; ok && other != prm.Name {
					p.addf("params", "params %q and %q both write node %s input %q in workflow %q", other, prm.Name, b.Node, b.Input, wf)
				}
				owner[k] = prm.Name
			}
		}
	}
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func typeList() string {
	s := make([]string, len(paramTypes))
	for i, t := range paramTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func isInteger(n json.Number) bool {
	r, ok := parseRat(n.String())
	return ok && r.IsInt()
}

func ratOf(n json.Number) *big.Rat {
	r, ok := parseRat(n.String())
	if !ok {
		return new(big.Rat)
	}
	return r
}

// Workflows returns the workflow names in manifest order; the first is the
// default.
func (m *Manifest) Workflows() []string {
	out := make([]string, len(m.workflows))
	for i, w := range m.workflows {
		out[i] = w.Key
	}
	return out
}

// DefaultWorkflow returns the name of the first workflow.
func (m *Manifest) DefaultWorkflow() string {
	if len(m.workflows) == 0 {
		return ""
	}
	return m.workflows[0].Key
}

// WorkflowFile returns the file of workflow name, relative to the manifest.
func (m *Manifest) WorkflowFile(name string) (string, bool) { return m.workflowFile(name) }

func (m *Manifest) workflowFile(name string) (string, bool) {
	for _, w := range m.workflows {
		if w.Key == name {
			s, _ := Value(w.Value).Text()
			return s, true
		}
	}
	return "", false
}

// Params returns the params in manifest order.
func (m *Manifest) Params() []*Param { return slices.Clone(m.params) }

// Param returns the param called name.
func (m *Manifest) Param(name string) (*Param, bool) {
	for _, p := range m.params {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// LoadWorkflows parses every workflow the manifest names. Paths are relative
// to dir inside fsys (the manifest's folder). Errors name the workflow and
// file.
func (m *Manifest) LoadWorkflows(fsys fs.FS, dir string) (map[string]*Workflow, error) {
	out := make(map[string]*Workflow, len(m.workflows))
	var errs []error
	for _, name := range m.Workflows() {
		file, _ := m.workflowFile(name)
		p := path.Join(dir, file)
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("workflow %q: %w", name, err))
			continue
		}
		wf, err := ParseWorkflow(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("workflow %q (%s): %w", name, p, err))
			continue
		}
		out[name] = wf
	}
	return out, errors.Join(errs...)
}

// MarshalJSON encodes the manifest in its file format.
func (m *Manifest) MarshalJSON() ([]byte, error) {
	type bindJSON = map[string][]Binding
	type paramJSON struct {
		Name        string          `json:"name"`
		Type        ParamType       `json:"type"`
		Description string          `json:"description,omitempty"`
		Required    bool            `json:"required,omitempty"`
		Default     json.RawMessage `json:"default,omitempty"`
		Min         json.Number     `json:"min,omitempty"`
		Max         json.Number     `json:"max,omitempty"`
		Options     []string        `json:"options,omitempty"`
		MaxLength   int             `json:"max_length,omitempty"`
		MaxSide     int             `json:"max_side,omitempty"`
		MaxBytes    int64           `json:"max_bytes,omitempty"`
		MaxSeconds  float64         `json:"max_seconds,omitempty"`
		Media       []string        `json:"media,omitempty"`
		Random      bool            `json:"random,omitempty"`
		Bind        bindJSON        `json:"bind"`
	}
	var b bytes.Buffer
	b.WriteByte('{')
	if m.Name != "" {
		b.Write(appendString([]byte(`"name":`), m.Name))
		b.WriteByte(',')
	}
	if m.Description != "" {
		b.Write(appendString([]byte(`"description":`), m.Description))
		b.WriteByte(',')
	}
	b.WriteString(`"workflows":`)
	b.Write(appendObject(nil, m.workflows))
	b.WriteString(`,"params":[`)
	for i, p := range m.params {
		if i > 0 {
			b.WriteByte(',')
		}
		pj := paramJSON{p.Name, p.Type, p.Description, p.Required, p.Default, p.Min, p.Max, p.Options, p.MaxLength, p.MaxSide, p.MaxBytes, p.MaxSeconds, p.Media, p.Random, p.Bindings}
		raw, err := marshalValue(pj)
		if err != nil {
			return nil, err
		}
		b.Write(raw)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

// value checks a param value and returns what to write into the workflow. v
// may be a json.RawMessage/Value (raw JSON), a json.Number, a Go number,
// string or bool. A random value is drawn from next (nil: "random" is
// accepted but nothing is drawn, as when checking a default).
func (prm *Param) value(v any, next func(lo, hi uint64) uint64) (Value, error) {
	raw, err := normalize(v)
	if err != nil {
		return nil, err
	}
	if string(raw) == "null" {
		return nil, errors.New("null is not a value; omit the param to use its default")
	}
	s, isStr := Value(raw).Text()
	switch prm.Type {
	case ParamInt:
		if isStr && s == RandomValue {
			if !prm.Random {
				return nil, fmt.Errorf("%q is accepted only by random params", RandomValue)
			}
			if next == nil {
				return Value(raw), nil
			}
			lo, hi := uint64(0), MaxSafeSeed
			if u, ok := ratToUint(prm.Min); ok {
				lo = u
			}
			if u, ok := ratToUint(prm.Max); ok {
				hi = min(u, MaxSafeSeed)
			}
			if hi < lo {
				hi = lo
			}
			return Value(strconv.FormatUint(next(lo, hi), 10)), nil
		}
		n, ok := numberOf(raw, s, isStr)
		if !ok {
			return nil, fmt.Errorf("want an integer, got %s", describeValue(Value(raw)))
		}
		r, ok := parseRat(n.String())
		if !ok {
			return nil, fmt.Errorf("%s is too large", truncate.Runes(n.String(), 40))
		}
		if !r.IsInt() {
			return nil, fmt.Errorf("want an integer, got %s", n)
		}
		if err := prm.checkRange(r, n); err != nil {
			return nil, err
		}
		return Value(r.Num().String()), nil
	case ParamFloat:
		n, ok := numberOf(raw, s, isStr)
		if !ok {
			return nil, fmt.Errorf("want a number, got %s", describeValue(Value(raw)))
		}
		r, ok := parseRat(n.String())
		if !ok {
			return nil, fmt.Errorf("%s is too large", truncate.Runes(n.String(), 40))
		}
		if err := prm.checkRange(r, n); err != nil {
			return nil, err
		}
		return Value(n.String()), nil
	case ParamBool:
		if b, ok := Value(raw).Bool(); ok {
			return Value(strconv.FormatBool(b)), nil
		}
		if isStr {
			if b, err := strconv.ParseBool(s); err == nil {
				return Value(strconv.FormatBool(b)), nil
			}
		}
		return nil, fmt.Errorf("want true or false, got %s", describeValue(Value(raw)))
	case ParamString:
		if !isStr {
			return nil, fmt.Errorf("want a string, got %s", kindOf(raw))
		}
		if prm.MaxLength > 0 && utf8.RuneCountInString(s) > prm.MaxLength {
			return nil, fmt.Errorf("%d characters is longer than the max length %d", utf8.RuneCountInString(s), prm.MaxLength)
		}
		return Value(raw), nil
	case ParamEnum:
		if !isStr {
			return nil, fmt.Errorf("want one of %s, got %s", optionList(prm.Options), kindOf(raw))
		}
		if !slices.Contains(prm.Options, s) {
			hint := ""
			if c := suggest.Closest(s, prm.Options, 2); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			return nil, fmt.Errorf("%q is not one of %s%s", truncate.Runes(s, 40), optionList(prm.Options), hint)
		}
		return Value(raw), nil
	case ParamImage, ParamMask, ParamVideo, ParamAudio, ParamFile:
		if !isStr {
			return nil, fmt.Errorf("want the name of an uploaded file, got %s", kindOf(raw))
		}
		if err := checkFileName(s); err != nil {
			return nil, err
		}
		return Value(raw), nil
	}
	return nil, fmt.Errorf("unknown param type %q", prm.Type)
}

func (prm *Param) checkRange(r *big.Rat, n json.Number) error {
	if prm.Min != "" && r.Cmp(ratOf(prm.Min)) < 0 {
		return fmt.Errorf("%s is below the min %s", n, prm.Min)
	}
	if prm.Max != "" && r.Cmp(ratOf(prm.Max)) > 0 {
		return fmt.Errorf("%s is above the max %s", n, prm.Max)
	}
	return nil
}

// CheckImageSize checks an image's or mask's size against MaxSide.
func (prm *Param) CheckImageSize(width, height int) error {
	if width <= 0 || height <= 0 {
		return fmt.Errorf("param `%s`: the image is empty (%dx%d)", prm.Name, width, height)
	}
	if prm.MaxSide > 0 && (width > prm.MaxSide || height > prm.MaxSide) {
		return fmt.Errorf("param `%s`: the image is %dx%d, above the max side %d px; scale it down", prm.Name, width, height, prm.MaxSide)
	}
	return nil
}

// IsFile says whether the param's value is an uploaded file (image, mask,
// video, audio or file): callers upload the file and pass its name.
func (prm *Param) IsFile() bool { return slices.Contains(fileTypes, prm.Type) }

// Accepts returns the kinds of media ("image", "video", "audio") a file
// param takes, or nil for a param that is not a file. An animated GIF is
// both an image and a video.
func (prm *Param) Accepts() []string {
	switch prm.Type {
	case ParamImage, ParamMask:
		return []string{MediaImage}
	case ParamVideo:
		return []string{MediaVideo}
	case ParamAudio:
		return []string{MediaAudio}
	case ParamFile:
		if len(prm.Media) > 0 {
			return slices.Clone(prm.Media)
		}
		return slices.Clone(mediaKinds)
	}
	return nil
}

// CheckFileSize checks a file param's file size, in bytes, against
// MaxBytes.
func (prm *Param) CheckFileSize(n int64) error {
	if prm.MaxBytes > 0 && n > prm.MaxBytes {
		return fmt.Errorf("param `%s`: the file is %s, above the max %s", prm.Name, bytesize.Decimal(n), bytesize.Decimal(prm.MaxBytes))
	}
	return nil
}

// CheckDuration checks the length of a video or audio file, in seconds,
// against MaxSeconds.
func (prm *Param) CheckDuration(seconds float64) error {
	if prm.MaxSeconds > 0 && seconds > prm.MaxSeconds {
		return fmt.Errorf("param `%s`: the file is %s s long, above the max %s s; trim it",
			prm.Name, strconv.FormatFloat(seconds, 'f', 1, 64), strconv.FormatFloat(prm.MaxSeconds, 'f', -1, 64))
	}
	return nil
}

// numberOf reads a JSON number, or a string holding one.
func numberOf(raw json.RawMessage, s string, isStr bool) (json.Number, bool) {
	if n, ok := Value(raw).Number(); ok {
		return n, true
	}
	if isStr {
		s = strings.TrimSpace(s)
		if n, ok := Value(s).Number(); ok && json.Valid([]byte(s)) {
			return n, true
		}
	}
	return "", false
}

// checkFileName accepts a name relative to ComfyUI's input folder.
func checkFileName(s string) error {
	bare, _ := splitAnnotation(s)
	switch {
	case bare == "":
		return errors.New("the file name is empty")
	case strings.HasPrefix(bare, "/") || strings.Contains(bare, `\`):
		return fmt.Errorf("file name %q must be relative to the input folder, with forward slashes", truncate.Runes(s, 60))
	case slices.Contains(strings.Split(bare, "/"), ".."):
		return fmt.Errorf("file name %q must not contain ..", truncate.Runes(s, 60))
	}
	for _, r := range bare {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("file name %q contains a control character", truncate.Runes(s, 60))
		}
	}
	return nil
}

// normalize turns a caller's value into raw JSON without losing precision.
func normalize(v any) (json.RawMessage, error) {
	switch t := v.(type) {
	case json.RawMessage:
		if !json.Valid(t) {
			return nil, errors.New("not valid JSON")
		}
		return compactRaw(t), nil
	case Value:
		return normalize(json.RawMessage(t))
	case json.Number:
		if _, ok := Value(t).Number(); !ok || !json.Valid([]byte(t)) {
			return nil, fmt.Errorf("%q is not a number", string(t))
		}
		return json.RawMessage(t), nil
	case float64:
		return floatRaw(t)
	case float32:
		return floatRaw(float64(t))
	}
	return marshalValue(v)
}

func floatRaw(f float64) (json.RawMessage, error) {
	if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
		return nil, fmt.Errorf("%v is not a finite number", f)
	}
	if f == float64(int64(f)) && f < 1e15 && f > -1e15 {
		return json.RawMessage(strconv.FormatInt(int64(f), 10)), nil
	}
	return json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64)), nil
}
