package worker

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/internal/jsonscan"
	"github.com/comfypod/comfypod/internal/suggest"
	"github.com/comfypod/comfypod/internal/truncate"
)

// Input is a job's input as the worker reads it. It is a superset of
// worker-comfyui's, so that worker's clients work unchanged:
//
//	{"workflow": {…API format…} | "<the same as a JSON string>",
//	 "workflow_name": "preview",
//	 "images":   [{"name": "input-1.png", "image": "<base64 | data:image/png;base64,… | https://…>"}],
//	 "files":    [{"name": "dance.mp4", "file": "<base64 | data:video/mp4;base64,… | https://…>"}],
//	 "params":   {"seed": 42, "prompt": "…", "target": "<an images or files name | base64 | data: URI | URL>"},
//	 "output":   {"format": "png|jpeg|webp", "quality": 90, "upload": "s3|base64", "include_temp": false},
//	 "comfy_org_api_key": "…"}
type Input struct {
	// Workflow is the API-format workflow as sent: a JSON object, or a JSON
	// string holding one. Nil when the job sends none and the package's
	// workflow runs.
	Workflow json.RawMessage
	// WorkflowName picks one of the package's workflows by its manifest
	// name; "" means the worker's default. With Workflow set, it names the
	// manifest bindings the params are applied with.
	WorkflowName string
	// Images are the files to upload before the workflow runs, in order.
	// Despite the name they may be videos or audio too: worker-comfyui's
	// clients send every input file here.
	Images []InputImage
	// Files are more files to upload, of any kind the worker accepts: the
	// clearer list for videos and audio. Their names share one namespace
	// with Images.
	Files []InputFile
	// Params are values for the package manifest's named params, raw.
	Params map[string]json.RawMessage
	// Output says how the outputs come back.
	Output OutputOptions
	// ComfyOrgAPIKey is passed to ComfyUI for its API nodes
	// (extra_data.api_key_comfy_org). It is never logged.
	ComfyOrgAPIKey string
	// Unknown lists the top-level keys the worker does not read; the result
	// reports them as warnings, since they are usually typos.
	Unknown []string
}

// InputImage is one entry of the input's images.
type InputImage struct {
	// Name is the file name the workflow's LoadImage nodes use.
	Name string
	// Image is the value as sent, unescaped: base64, a data: URI or an
	// http(s) URL. It may share memory with the document it was read from.
	Image []byte
}

// InputFile is one entry of the input's files.
type InputFile struct {
	// Name is the file name the workflow's loader nodes use.
	Name string
	// File is the value as sent, unescaped: base64, a data: URI or an
	// http(s) URL. It may share memory with the document it was read from.
	File []byte
}

// OutputOptions are the input's "output" object.
type OutputOptions struct {
	// Format converts still images to png, jpeg or webp ("" keeps what the
	// nodes wrote). Videos, audio and animations are never converted.
	Format string `json:"format"`
	// Quality is the JPEG quality, 1 to 100 (0 means JPEGQualityDefault).
	Quality int `json:"quality"`
	// Upload is "s3" to require an upload to S3, "base64" to return the files
	// inline even when S3 is configured, or "" for the default (S3 when
	// configured, else base64).
	Upload string `json:"upload"`
	// IncludeTemp returns temporary previews (PreviewImage, VHS with
	// save_output false) too.
	IncludeTemp bool `json:"include_temp"`
}

// Output upload modes.
const (
	UploadS3     = "s3"
	UploadBase64 = "base64"
)

// inputKeys are the top-level keys the worker reads, for "did you mean".
var inputKeys = []string{"workflow", "workflow_name", "images", "files", "params", "output", "comfy_org_api_key"}

// DecodeInput reads a job's input. It accepts a JSON object, or a JSON string
// holding one (worker-comfyui parses string inputs too). Problems with field
// types are collected and returned together as an *Error matching
// ErrInvalidInput; malformed JSON stops at the first error. Image data is not
// decoded here: see Handler for the checks that follow.
//
// Image strings are read without copying when they hold no escapes, so
// decoding a job with 15 MB of base64 costs a few milliseconds, not the
// ~60 ms of encoding/json.
func DecodeInput(data []byte) (*Input, error) {
	sc := jsonscan.New(data)
	switch sc.Peek() {
	case '{':
	case '"':
		// A string input holding the object.
		inner, err := sc.Bytes()
		if err != nil {
			return nil, syntaxError(err)
		}
		if err := sc.End(); err != nil {
			return nil, syntaxError(err)
		}
		isc := jsonscan.New(inner)
		if isc.Peek() != '{' {
			return nil, inputError("the input is a string that does not hold a JSON object; send an object such as {\"workflow\": {…}, \"images\": […]}")
		}
		sc = isc
	case 0:
		if !sc.AtEnd() {
			return nil, syntaxError(sc.Errorf("unexpected byte 0x00"))
		}
		return nil, inputError("the input is empty; send an object such as {\"workflow\": {…}, \"images\": […]}")
	default:
		raw, err := jsonscan.New(data).Value()
		if err != nil {
			return nil, syntaxError(err)
		}
		return nil, inputError("the input is %s; send an object such as {\"workflow\": {…}, \"images\": […]}", jsonscan.Kind(raw))
	}
	in := &Input{}
	var probs problems
	seen := map[string]bool{}
	err := sc.Object(func(key string) error {
		if seen[key] {
			probs.add(key, "appears twice in the input; send it once")
		}
		seen[key] = true
		switch key {
		case "workflow":
			raw, err := sc.Value()
			if err != nil {
				return err
			}
			switch jsonscan.Kind(raw) {
			case "an object", "a string":
				in.Workflow = raw
			case "null":
				in.Workflow = nil
			default:
				probs.add("workflow", "want an API-format workflow object (or a JSON string holding one), got %s", jsonscan.Kind(raw))
			}
		case "workflow_name":
			return stringMember(sc, &probs, "workflow_name", &in.WorkflowName)
		case "comfy_org_api_key":
			return stringMember(sc, &probs, "comfy_org_api_key", &in.ComfyOrgAPIKey)
		case "images":
			return decodeFileList(sc, &probs, in, "images", "image", "input-1.png", "LoadImage")
		case "files":
			return decodeFileList(sc, &probs, in, "files", "file", "dance.mp4", "loader")
		case "params":
			return decodeParams(sc, &probs, in)
		case "output":
			return decodeOutput(sc, &probs, in)
		default:
			if _, err := sc.Value(); err != nil {
				return err
			}
			in.Unknown = append(in.Unknown, key)
		}
		return nil
	})
	if err != nil {
		return nil, syntaxError(err)
	}
	if err := sc.End(); err != nil {
		return nil, syntaxError(err)
	}
	if err := probs.err(ErrInvalidInput); err != nil {
		return nil, err
	}
	return in, nil
}

func syntaxError(err error) error {
	return inputError("the input is not valid JSON (%v)", err)
}

// inputError is an *Error about the input as a whole.
func inputError(format string, args ...any) error {
	return &Error{Kind: ErrInvalidInput, Problems: []Problem{{Message: fmt.Sprintf(format, args...)}}}
}

// stringMember reads a string value into dst, or records a problem.
func stringMember(sc *jsonscan.Scanner, probs *problems, field string, dst *string) error {
	if sc.Peek() == '"' {
		s, err := sc.Text()
		*dst = s
		return err
	}
	raw, err := sc.Value()
	if err != nil {
		return err
	}
	if jsonscan.Kind(raw) != "null" {
		probs.add(field, "want a string, got %s", jsonscan.Kind(raw))
	}
	return nil
}

// decodeFileList reads images or files: a list of {"name", <dataKey>}
// objects (dataKey is "image" or "file"); example and loader (the node
// that loads such files) are for messages.
func decodeFileList(sc *jsonscan.Scanner, probs *problems, in *Input, key, dataKey, example, loader string) error {
	shape := fmt.Sprintf(`{"name": %q, %q: "<base64>"}`, example, dataKey)
	if sc.Peek() != '[' {
		raw, err := sc.Value()
		if err != nil {
			return err
		}
		if jsonscan.Kind(raw) != "null" {
			probs.add(key, "want a list of %s objects, got %s", shape, jsonscan.Kind(raw))
		}
		return nil
	}
	return sc.Array(func(i int) error {
		field := fmt.Sprintf("%s[%d]", key, i)
		var name string
		var data []byte
		if sc.Peek() != '{' {
			raw, err := sc.Value()
			if err != nil {
				return err
			}
			probs.add(field, "want an object %s, got %s", shape, jsonscan.Kind(raw))
		} else {
			var hasName, hasData bool
			err := sc.Object(func(k string) error {
				switch k {
				case "name":
					hasName = true
					return stringMember(sc, probs, field+".name", &name)
				case dataKey:
					hasData = true
					if sc.Peek() == '"' {
						b, err := sc.Bytes()
						data = b
						return err
					}
					raw, err := sc.Value()
					if err != nil {
						return err
					}
					probs.add(field+"."+dataKey, "want a string (base64, a data: URI or an https URL), got %s", jsonscan.Kind(raw))
					return nil
				default:
					if _, err := sc.Value(); err != nil {
						return err
					}
					in.Unknown = append(in.Unknown, field+"."+k)
					return nil
				}
			})
			if err != nil {
				return err
			}
			switch {
			case !hasName:
				probs.add(field+".name", "missing: give the file name the workflow's %s node uses, e.g. %q", loader, example)
			case name == "" && !slices.ContainsFunc(*probs, func(p Problem) bool { return p.Field == field+".name" }):
				probs.add(field+".name", "is empty: give the file name the workflow's %s node uses, e.g. %q", loader, example)
			}
			if !hasData {
				probs.add(field+"."+dataKey, "missing: give the %s as base64, a data: URI or an https URL", dataKey)
			}
		}
		if key == "images" {
			in.Images = append(in.Images, InputImage{Name: name, Image: data})
		} else {
			in.Files = append(in.Files, InputFile{Name: name, File: data})
		}
		return nil
	})
}

func decodeParams(sc *jsonscan.Scanner, probs *problems, in *Input) error {
	if sc.Peek() != '{' {
		raw, err := sc.Value()
		if err != nil {
			return err
		}
		if jsonscan.Kind(raw) != "null" {
			probs.add("params", "want an object of named values such as {\"seed\": 42}, got %s", jsonscan.Kind(raw))
		}
		return nil
	}
	in.Params = map[string]json.RawMessage{}
	return sc.Object(func(key string) error {
		raw, err := sc.Value()
		if err != nil {
			return err
		}
		if _, dup := in.Params[key]; dup {
			probs.add("params."+key, "appears twice; send it once")
		}
		in.Params[key] = raw
		return nil
	})
}

func decodeOutput(sc *jsonscan.Scanner, probs *problems, in *Input) error {
	raw, err := sc.Value()
	if err != nil {
		return err
	}
	switch jsonscan.Kind(raw) {
	case "null":
		return nil
	case "an object":
	default:
		probs.add("output", "want an object such as {\"format\": \"png\"}, got %s", jsonscan.Kind(raw))
		return nil
	}
	osc := jsonscan.New(raw)
	return osc.Object(func(key string) error {
		field := "output." + key
		switch key {
		case "format":
			return stringMember(osc, probs, field, &in.Output.Format)
		case "upload":
			return stringMember(osc, probs, field, &in.Output.Upload)
		case "quality":
			v, err := osc.Value()
			if err != nil {
				return err
			}
			var q int
			if json.Unmarshal(v, &q) != nil {
				probs.add(field, "want a whole number from 1 to 100, got %s", strings.TrimSpace(truncate.Bytes(string(v), 40)))
				return nil
			}
			in.Output.Quality = q
		case "include_temp":
			v, err := osc.Value()
			if err != nil {
				return err
			}
			if json.Unmarshal(v, &in.Output.IncludeTemp) != nil {
				probs.add(field, "want true or false, got %s", jsonscan.Kind(v))
			}
		default:
			if _, err := osc.Value(); err != nil {
				return err
			}
			hint := ""
			if c := suggest.Closest(key, []string{"format", "quality", "upload", "include_temp"}, 2); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			probs.add(field, "unknown option%s; output takes format, quality, upload and include_temp", hint)
		}
		return nil
	})
}
