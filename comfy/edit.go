package comfy

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"path"
	"strings"

	"github.com/comfypod/comfypod/internal/truncate"
)

// FileInput is a node input that names a file in the server's input folder
// (LoadImage.image, LoadImageMask.image, VHS_LoadVideo.video, …).
type FileInput struct {
	// Node and Class identify the node; Input is the input name.
	Node, Class, Input string
	// Kind is "image", "video" or "audio".
	Kind string
	// Value is the file name the input holds ("" when it is a link).
	Value string
}

// knownFileInputs are the file-picking inputs of common classes, used when no
// /object_info is at hand.
var knownFileInputs = map[string]struct{ input, kind string }{
	"LoadImage":           {"image", "image"},
	"LoadImageMask":       {"image", "image"},
	"LoadImageOutput":     {"image", "image"},
	"VHS_LoadVideo":       {"video", "video"},
	"VHS_LoadVideoFFmpeg": {"video", "video"},
	"VHS_LoadAudioUpload": {"audio", "audio"},
	"LoadVideo":           {"file", "video"},
	"LoadAudio":           {"audio", "audio"},
}

// FileInputs lists the inputs that pick an uploaded file, in document order.
// With info (may be nil) any input the server marks as an upload widget
// counts, and the inputs of a built-in list of core and common custom
// loaders whatever the server marks; without it the built-in list alone is
// used.
func (w *Workflow) FileInputs(info ObjectInfo) []FileInput {
	var out []FileInput
	for _, n := range w.nodes {
		add := func(input, kind string) {
			v, ok := n.Input(input)
			if !ok {
				return
			}
			s, _ := v.Text()
			out = append(out, FileInput{Node: n.ID, Class: n.ClassType, Input: input, Kind: kind, Value: s})
		}
		k, known := knownFileInputs[n.ClassType]
		if c, ok := info.Class(n.ClassType); ok {
			for _, spec := range c.Inputs() {
				switch {
				case spec.Upload != "":
					add(spec.Name, spec.Upload)
				case known && spec.Name == k.input:
					// A loader whose server entry has no upload flag
					// (VideoHelperSuite lists its files as a plain combo).
					add(spec.Name, k.kind)
				}
			}
			continue
		}
		if known {
			add(k.input, k.kind)
		}
	}
	return out
}

// knownFileKind returns the kind of file a known loader's input picks
// ("image", "video", "audio"), or "" when class.input is not one.
func knownFileKind(class, input string) string {
	if k, ok := knownFileInputs[class]; ok && k.input == input {
		return k.kind
	}
	return ""
}

// RenameFile points every file input (see FileInputs) that names from at to
// instead, keeping a " [input]"-style annotation, and returns the ids of the
// nodes it changed. Use it after an upload the server renamed
// ("cat.png" → "cat (1).png").
func (w *Workflow) RenameFile(info ObjectInfo, from, to string) []string {
	var changed []string
	for _, fi := range w.FileInputs(info) {
		bare, ann := splitAnnotation(fi.Value)
		if bare != from {
			continue
		}
		n := w.byID[fi.Node]
		if err := n.SetInput(fi.Input, to+ann); err == nil {
			changed = append(changed, fi.Node)
		}
	}
	return changed
}

// splitAnnotation splits "name.png [output]" into "name.png" and " [output]".
func splitAnnotation(name string) (bare, annotation string) {
	for _, t := range []string{" [input]", " [output]", " [temp]"} {
		if strings.HasSuffix(name, t) {
			return strings.TrimSuffix(name, t), t
		}
	}
	return name, ""
}

// knownOutputClasses are output nodes of core ComfyUI and common custom
// nodes, used when no /object_info is at hand.
var knownOutputClasses = map[string]bool{
	"SaveImage": true, "PreviewImage": true, "SaveAnimatedWEBP": true, "SaveAnimatedPNG": true,
	"SaveVideo": true, "SaveWEBM": true, "SaveAudio": true, "SaveAudioMP3": true, "SaveAudioOpus": true,
	"PreviewAudio": true, "SaveLatent": true, "SaveImageWebsocket": true, "PreviewAny": true,
	"SaveGLB": true, "Preview3D": true, "VHS_VideoCombine": true, "SaveImageExtended": true,
}

// OutputNodes returns the output nodes (the nodes ComfyUI runs the workflow
// for), in document order. With info (may be nil) the server's output_node
// flag decides; without it a built-in list of core and common custom savers.
func (w *Workflow) OutputNodes(info ObjectInfo) []*Node {
	var out []*Node
	for _, n := range w.nodes {
		if c, ok := info.Class(n.ClassType); ok {
			if c.OutputNode {
				out = append(out, n)
			}
			continue
		}
		if knownOutputClasses[n.ClassType] {
			out = append(out, n)
		}
	}
	return out
}

// UniquePrefixes makes every constant filename_prefix input unique to one job
// by putting tag before the file part of the prefix, keeping any subfolder:
// "brush/out" becomes "brush/<tag>_out". It returns node id → new prefix, so
// outputs can be matched to the job. tag may hold letters, digits, '-', '_'
// and '.', and must not start with '.'.
func (w *Workflow) UniquePrefixes(tag string) (map[string]string, error) {
	if err := checkTag(tag); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range w.nodes {
		v, ok := n.Input("filename_prefix")
		if !ok {
			continue
		}
		p, ok := v.Text()
		if !ok {
			continue // a link or a number: leave it
		}
		dir, base := path.Split(p)
		np := dir + tag
		if base != "" {
			np += "_" + base
		}
		if err := n.SetInput("filename_prefix", np); err != nil {
			return nil, err
		}
		out[n.ID] = np
	}
	return out, nil
}

func checkTag(tag string) error {
	if tag == "" {
		return fmt.Errorf("prefix tag is empty")
	}
	if len(tag) > 64 {
		return fmt.Errorf("prefix tag %q is longer than 64 characters", truncate.Runes(tag, 70))
	}
	if tag[0] == '.' {
		return fmt.Errorf("prefix tag %q must not start with '.'", tag)
	}
	for _, r := range tag {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("prefix tag %q may hold only letters, digits, '-', '_' and '.'", tag)
		}
	}
	return nil
}

// SeedChange records one seed RandomizeSeeds set.
type SeedChange struct {
	// Node is the node whose seed changed.
	Node string
	// Input is the seed input's name.
	Input string
	// Seed is the new value.
	Seed uint64
}

// Seed bounds used when no /object_info says otherwise. MaxSafeSeed keeps
// seeds exact for JavaScript clients that read them back.
const (
	DefaultMaxSeed uint64 = 1<<32 - 1
	MaxSafeSeed    uint64 = 1<<53 - 1
)

// RandomizeSeeds gives every constant seed input a fresh random value from
// rnd, so a resubmitted workflow is not served from ComfyUI's cache (the
// server never randomizes: control_after_generate is a UI feature). Seed
// inputs are those named seed or noise_seed, plus, with info, any input the
// server marks control_after_generate. Values are drawn within the input's
// declared min/max (capped at MaxSafeSeed), or 0..DefaultMaxSeed without info.
func (w *Workflow) RandomizeSeeds(rnd *rand.Rand, info ObjectInfo) []SeedChange {
	var out []SeedChange
	for _, n := range w.nodes {
		c, _ := info.Class(n.ClassType)
		for _, in := range n.inputs {
			var spec *InputSpec
			if c != nil {
				spec, _ = c.Input(in.Key)
			}
			isSeed := in.Key == "seed" || in.Key == "noise_seed" || (spec != nil && spec.ControlAfterGenerate)
			if !isSeed {
				continue
			}
			if _, ok := Value(in.Value).Number(); !ok {
				continue // linked or not a number
			}
			lo, hi := seedRange(spec)
			s := lo + rnd.Uint64N(hi-lo+1)
			if err := n.SetInput(in.Key, s); err != nil {
				continue
			}
			out = append(out, SeedChange{Node: n.ID, Input: in.Key, Seed: s})
		}
	}
	return out
}

// seedRange returns the inclusive range a random seed is drawn from.
func seedRange(spec *InputSpec) (lo, hi uint64) {
	lo, hi = 0, DefaultMaxSeed
	if spec == nil {
		return lo, hi
	}
	if v, ok := ratToUint(spec.Min); ok {
		lo = v
	}
	if spec.Max != "" {
		if v, ok := ratToUint(spec.Max); ok {
			hi = min(v, MaxSafeSeed)
		} else if strings.HasPrefix(spec.Max.String(), "-") {
			hi = lo
		} else {
			hi = MaxSafeSeed
		}
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// ratToUint converts a non-negative JSON number to uint64, saturating.
func ratToUint(n interface{ String() string }) (uint64, bool) {
	r, ok := parseRat(n.String())
	if !ok || r.Sign() < 0 {
		return 0, false
	}
	i := new(big.Int).Quo(r.Num(), r.Denom())
	if !i.IsUint64() {
		return ^uint64(0), true
	}
	return i.Uint64(), true
}
