package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/exif"
	"github.com/comfypod/comfypod/internal/suggest"
	"github.com/comfypod/comfypod/runpod"
)

// ManifestFile is the manifest's name at the root of a package.
const ManifestFile = "comfypod.json"

// pkg is the package jobs run: its manifest, the workflow chosen, and the
// params that carry images.
type pkg struct {
	manifest *comfy.Manifest
	name     string // workflow name
	workflow *comfy.Workflow
	// images are the image and mask params, in manifest order; base is the
	// first image param, whose size masks must match.
	images []*comfy.Param
	base   *comfy.Param
}

func loadPackage(fsys fs.FS, workflow string) (*pkg, error) {
	data, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		return nil, fmt.Errorf("gateway: reading the package manifest: %w", err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("gateway: %s: %w", ManifestFile, err)
	}
	wfs, err := m.LoadWorkflows(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if workflow == "" {
		workflow = m.DefaultWorkflow()
	}
	wf, ok := wfs[workflow]
	if !ok {
		return nil, fmt.Errorf("gateway: the package has no workflow %q (it has %s)", workflow, strings.Join(m.Workflows(), ", "))
	}
	if err := m.Check(wf, workflow, nil); err != nil {
		return nil, fmt.Errorf("gateway: the manifest does not fit workflow %q: %w", workflow, err)
	}
	p := &pkg{manifest: m, name: workflow, workflow: wf}
	for _, prm := range m.Params() {
		switch prm.Type {
		case comfy.ParamImage:
			if p.base == nil {
				p.base = prm
			}
			p.images = append(p.images, prm)
		case comfy.ParamMask:
			p.images = append(p.images, prm)
		case comfy.ParamVideo, comfy.ParamAudio, comfy.ParamFile:
			return nil, fmt.Errorf("gateway: param %q is a %s; the gateway takes image and mask files only (send videos and audio to the worker directly)", prm.Name, prm.Type)
		}
	}
	return p, nil
}

func (p *pkg) imageParam(name string) (*comfy.Param, bool) {
	for _, prm := range p.images {
		if prm.Name == name {
			return prm, true
		}
	}
	return nil, false
}

func (p *pkg) imageNames() string {
	names := make([]string, len(p.images))
	for i, prm := range p.images {
		names[i] = prm.Name
	}
	return strings.Join(names, ", ")
}

// submission is what a POST /v1/jobs carried, before any check.
type submission struct {
	// files are the image params' bytes, by param name.
	files map[string][]byte
	// params are the other values: strings from a form, raw JSON from a JSON
	// body.
	params map[string]any
}

// workerImage is one image of the RunPod input.
type workerImage struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// workerInput is the job input RunPod's worker gets: worker-comfyui's shape,
// which comfypod's worker also accepts.
type workerInput struct {
	Workflow *comfy.Workflow `json:"workflow"`
	Images   []workerImage   `json:"images"`
}

// inputOverhead is room left under RunPod's payload limit for the request
// envelope and webhook.
const inputOverhead = 8 << 10

// prepared is a submission made ready for RunPod.
type prepared struct {
	// input is the RunPod input: the workflow with the params applied and
	// the images.
	input []byte
	// params are the values applied (images left out), as a JSON object.
	params json.RawMessage
	// images are the images as the workers get them, in manifest order.
	images []preparedImage
}

// preparedImage is one image of a job as its workers get it.
type preparedImage struct {
	param       string // the image param's name
	name        string // the file name in the RunPod input
	contentType string
	data        []byte
}

// prepare checks a submission against the package and builds the RunPod
// input of job id: params applied to a copy of the workflow, images checked,
// turned upright, downscaled and named.
func (s *Service) prepare(id string, sub *submission, rnd *rand.Rand) (*prepared, *apiError) {
	p := s.pkg
	// Cheap checks first: which files came, in which format, and the params.
	type upload struct {
		prm    *comfy.Param
		data   []byte
		format string
		name   string
		orient int // EXIF orientation
	}
	var uploads []*upload
	var problems []Problem
	for name := range sub.files {
		if _, ok := p.imageParam(name); !ok {
			problems = append(problems, Problem{Field: name, Message: fmt.Sprintf("unknown image field (this package takes %s)", p.imageNames())})
		}
	}
	values := make(map[string]any, len(sub.params)+len(p.images))
	for k, v := range sub.params {
		if _, ok := p.imageParam(k); ok {
			problems = append(problems, Problem{Field: k, Message: "send the image as a file (multipart) or as base64 in a JSON string"})
			continue
		}
		if _, ok := p.manifest.Param(k); !ok {
			problems = append(problems, Problem{Field: k, Message: p.unknownParam(k)})
			continue
		}
		values[k] = v
	}
	for _, prm := range p.images {
		data, ok := sub.files[prm.Name]
		if !ok {
			continue // Apply says it is required
		}
		if len(data) == 0 {
			problems = append(problems, Problem{Field: prm.Name, Message: "the file is empty"})
			values[prm.Name] = id + "-" + prm.Name + ".png"
			continue
		}
		f := sniffFormat(data)
		switch f {
		case formatPNG, formatJPEG, formatWEBP:
		case "":
			return nil, unsupported(prm.Name, "not an image: send a PNG, JPEG or WEBP file")
		default:
			return nil, unsupported(prm.Name, "%s images are not accepted: send a PNG, JPEG or WEBP file", strings.ToUpper(f))
		}
		u := &upload{prm: prm, data: data, format: f}
		ext := ".png"
		if f == formatJPEG && prm.Type == comfy.ParamImage {
			ext = ".jpg"
		}
		u.name = id + "-" + prm.Name + ext
		values[prm.Name] = u.name
		uploads = append(uploads, u)
	}
	wf := p.workflow.Clone()
	applied, err := p.manifest.Apply(wf, p.name, values, comfy.ApplyOptions{Rand: rnd})
	if err != nil {
		var pe *comfy.ParamsError
		if !errors.As(err, &pe) {
			return nil, internal(fmt.Errorf("applying params: %w", err))
		}
		for _, pp := range pe.Problems {
			if pp.Workflow != "" {
				// A binding that does not fit is the package's fault.
				return nil, internal(fmt.Errorf("applying params: %w", err))
			}
			problems = append(problems, Problem{Field: pp.Param, Message: pp.Message})
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
		e := invalid(problems[0].Field, "%s", problems[0].Message)
		if len(problems) > 1 {
			e = &apiError{status: e.status, code: e.code, msg: fmt.Sprintf("%d problems with the request; see problems", len(problems))}
		}
		e.problems = problems
		return nil, e
	}

	// Decode, check sizes, align masks and downscale.
	var baseW, baseH int
	var baseUp *upload
	sizes := map[string][2]int{}
	for _, u := range uploads {
		cfg, err := decodeConfig(u.data, u.format)
		if err != nil {
			return nil, invalid(u.prm.Name, "the %s file is damaged: %v", strings.ToUpper(u.format), err)
		}
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return nil, invalid(u.prm.Name, "the image has no pixels")
		}
		if int64(cfg.Width)*int64(cfg.Height) > s.cfg.MaxPixels {
			return nil, tooLarge(u.prm.Name, "%d×%d is more pixels than the %d million accepted: send a smaller image",
				cfg.Width, cfg.Height, s.cfg.MaxPixels>>20)
		}
		// Sizes are those of the upright image, as LoadImage sees it.
		u.orient = orientationOf(u.data, u.format)
		w, h := uprightSize(cfg.Width, cfg.Height, u.orient)
		sizes[u.prm.Name] = [2]int{w, h}
		if u.prm == p.base {
			baseW, baseH, baseUp = w, h, u
		}
	}
	images := make([]workerImage, 0, len(uploads))
	prep := &prepared{}
	for _, u := range uploads {
		w, h := sizes[u.prm.Name][0], sizes[u.prm.Name][1]
		limit := u.prm.MaxSide
		if s.cfg.MaxSide > 0 && (limit == 0 || s.cfg.MaxSide < limit) {
			limit = s.cfg.MaxSide
		}
		img, err := decodeImage(u.data, u.format)
		if err != nil {
			return nil, invalid(u.prm.Name, "the %s file is damaged: %v", strings.ToUpper(u.format), err)
		}
		img = upright(img, u.orient)
		var out []byte
		switch {
		case u.prm.Type == comfy.ParamMask:
			if baseUp != nil && (w != baseW || h != baseH) {
				turned := ""
				if exif.Swaps(baseUp.orient) {
					turned = " once turned upright as its EXIF orientation says"
				}
				return nil, invalid(u.prm.Name, "the mask is %d×%d but %s is %d×%d%s: paint the mask over %s at its size",
					w, h, p.base.Name, baseW, baseH, turned, p.base.Name)
			}
			paint, painted := maskPaint(img)
			if !painted {
				return nil, invalid(u.prm.Name, "nothing is painted: mark where to paint with transparent pixels (or white on an opaque black mask)")
			}
			// A mask follows its image's downscaling exactly, so the two stay
			// aligned pixel for pixel.
			nw, nh := fitSide(w, h, limit)
			if baseUp != nil {
				nw, nh = fitSide(baseW, baseH, baseLimit(p.base, s.cfg.MaxSide))
			}
			if nw != w || nh != h {
				paint = scaleGray(paint, nw, nh)
			}
			out, err = encodePNG(canonicalMask(paint))
		default:
			nw, nh := fitSide(w, h, limit)
			switch {
			case nw != w || nh != h || turns(u.orient):
				// Workers get the image upright, without the tag, so that
				// no reader turns it twice or not at all.
				if nw != w || nh != h {
					img = scaleImage(img, nw, nh)
				}
				if u.format == formatJPEG {
					out, err = encodeJPEG(img)
				} else {
					out, err = encodePNG(img)
				}
			case u.format == formatWEBP:
				// Workers and ComfyUI builds read PNG everywhere.
				out, err = encodePNG(img)
			default:
				out = u.data // sent byte for byte
			}
		}
		if err != nil {
			return nil, internal(fmt.Errorf("encoding %s: %w", u.prm.Name, err))
		}
		images = append(images, workerImage{Name: u.name, Image: base64.StdEncoding.EncodeToString(out)})
		ct := "image/png"
		if bytes.HasPrefix(out, []byte{0xff, 0xd8}) {
			ct = "image/jpeg"
		}
		prep.images = append(prep.images, preparedImage{param: u.prm.Name, name: u.name, contentType: ct, data: out})
	}
	// Output files carry the job id, so they are easy to find on a worker.
	if _, err := wf.UniquePrefixes(id); err != nil {
		return nil, internal(fmt.Errorf("naming outputs: %w", err))
	}
	input, err := json.Marshal(workerInput{Workflow: wf, Images: images})
	if err != nil {
		return nil, internal(fmt.Errorf("encoding the input: %w", err))
	}
	if limit := int64(runpod.RunPayloadLimit - inputOverhead); int64(len(input)) > limit {
		return nil, tooLarge("", "the images come to %.1f MB once encoded, and RunPod accepts %d MB per job: send smaller images (or JPEG)",
			float64(len(input))/(1<<20), runpod.RunPayloadLimit>>20)
	}
	vals := map[string]json.RawMessage{}
	for name, v := range applied.Values {
		if _, ok := p.imageParam(name); !ok {
			vals[name] = json.RawMessage(v)
		}
	}
	prep.input = input
	if prep.params, err = json.Marshal(vals); err != nil {
		return nil, internal(fmt.Errorf("encoding params: %w", err))
	}
	return prep, nil
}

func baseLimit(prm *comfy.Param, maxSide int) int {
	limit := prm.MaxSide
	if maxSide > 0 && (limit == 0 || maxSide < limit) {
		limit = maxSide
	}
	return limit
}

// unknownParam says that name is not a param of the package, suggesting the
// closest one.
func (p *pkg) unknownParam(name string) string {
	var names []string
	for _, prm := range p.manifest.Params() {
		names = append(names, prm.Name)
	}
	msg := "unknown param"
	if best := suggest.Closest(name, names, 2); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg + "; this package takes " + strings.Join(names, ", ")
}
