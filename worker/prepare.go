package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/jsonscan"
	"github.com/comfypod/comfypod/serverless"
)

// jobRun is the state of one job.
type jobRun struct {
	h     *Handler
	job   *serverless.Job
	log   *slog.Logger
	scrub redactor
	tag   string
	start time.Time

	in          *Input
	wf          *comfy.Workflow
	wfName      string // manifest workflow the params bind to ("" without a manifest)
	fromPackage bool   // the workflow is one the package ships
	info        comfy.ObjectInfo
	uploads     []*upload
	applied     *comfy.Applied
	warnings    []string

	format      string // output conversion: "", png, jpeg or webp
	quality     int
	includeTemp bool
	s3          *s3Target // where outputs go; nil for base64
	s3Job       bool      // s3 came from the job's s3Config

	warmup bool // a warm-up run: outputs are not collected

	// What to clean up.
	uploaded []comfy.Uploaded
	outputs  []comfy.OutputFile
	promptID string
}

// upload is one file the job sends to ComfyUI.
type upload struct {
	field  string // where it came from: "images[0]" or "params.target"
	name   string // the client's name ("" for a param)
	server string // the name it is stored under: <tag>_<name>
	source []byte // as sent: base64, data: URI or URL
	data   []byte // the file
	info   imageInfo
	param  *comfy.Param // the param it fills, if any
}

func (h *Handler) newRun(job *serverless.Job) *jobRun {
	log := job.Logger()
	if log == nil {
		log = h.log
	}
	r := &jobRun{h: h, job: job, log: log, tag: h.newTag(), start: h.now()}
	r.scrub = h.scrub
	if job.S3Config != nil {
		r.scrub = r.scrub.with(job.S3Config.AccessSecret)
	}
	return r
}

// prepare reads and checks everything about the job before anything is
// sent to ComfyUI (it only reads node class schemas), fetching URL inputs.
func (r *jobRun) prepare(ctx context.Context) error {
	in, err := DecodeInput(r.job.Input)
	if err != nil {
		return err
	}
	r.in = in
	r.scrub = r.scrub.with(in.ComfyOrgAPIKey)
	for _, k := range in.Unknown {
		msg := fmt.Sprintf("input key %q is not used by this worker and was ignored", k)
		if !strings.Contains(k, ".") {
			if c := closest(k, inputKeys); c != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", c)
			}
		}
		r.warnings = append(r.warnings, msg)
	}
	var inProbs, wfProbs problems
	r.checkOutputOptions(&inProbs)
	r.resolveWorkflow(&inProbs)
	r.planImages(&inProbs)
	if len(inProbs) == 0 {
		r.loadImages(ctx, &inProbs)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	if r.wf != nil {
		if err := r.checkWorkflow(ctx, &inProbs, &wfProbs); err != nil {
			return err
		}
	}
	switch {
	case len(inProbs) > 0:
		return &Error{Kind: ErrInvalidInput, Problems: append(inProbs, wfProbs...)}
	case len(wfProbs) > 0:
		return &Error{Kind: ErrInvalidWorkflow, Problems: wfProbs}
	}
	return nil
}

// checkOutputOptions reads "output" and picks where outputs go.
func (r *jobRun) checkOutputOptions(probs *problems) {
	o := r.in.Output
	switch f := strings.ToLower(strings.TrimSpace(o.Format)); f {
	case "", "png", "webp":
		r.format = f
	case "jpeg", "jpg":
		r.format = "jpeg"
	default:
		probs.add("output.format", "%q is not a format the worker converts to; want png, jpeg or webp", truncate(o.Format, 40))
	}
	switch {
	case o.Quality == 0:
		r.quality = JPEGQualityDefault
	case o.Quality < 1 || o.Quality > 100:
		probs.add("output.quality", "%d is out of range; want 1 to 100", o.Quality)
	default:
		r.quality = o.Quality
	}
	r.includeTemp = o.IncludeTemp
	if sc := r.job.S3Config; sc != nil {
		t, err := resolveS3(fromJob(sc))
		if err != nil {
			probs.add("s3Config", "%s", jobS3Message(err))
		} else {
			r.s3, r.s3Job = t, true
		}
	} else {
		r.s3 = r.h.s3
	}
	switch strings.ToLower(o.Upload) {
	case "":
	case UploadS3:
		if r.s3 == nil && r.job.S3Config == nil {
			probs.add("output.upload", "\"s3\" asks for S3 but this endpoint has no bucket: set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint, or send s3Config with the job")
		}
	case UploadBase64:
		r.s3, r.s3Job = nil, false
	default:
		probs.add("output.upload", "%q: want \"s3\" or \"base64\"", truncate(o.Upload, 40))
	}
}

// jobS3Message rewrites an S3Config problem in the job's own field names.
func jobS3Message(err error) string {
	msg := err.Error()
	for _, r := range [][2]string{
		{"the access key id and the secret access key are both needed", "accessId and accessSecret are both needed"},
		{"endpoint URL", "endpointUrl"},
		{"give the bucket name", "set bucketName"},
		{"prefix", "objectPath"},
	} {
		msg = strings.ReplaceAll(msg, r[0], r[1])
	}
	return msg
}

// resolveWorkflow picks the workflow: the job's, or the package's.
func (r *jobRun) resolveWorkflow(probs *problems) {
	m := r.h.cfg.Manifest
	name := r.in.WorkflowName
	if name != "" {
		if m == nil {
			probs.add("workflow_name", "%q: this worker has no package manifest, so it has no named workflows; send the workflow itself", truncate(name, 40))
			return
		}
		if _, ok := r.h.cfg.Workflows[name]; !ok {
			probs.add("workflow_name", "%q is not a workflow of this package; it has %s", truncate(name, 40), strings.Join(m.Workflows(), ", "))
			return
		}
	} else if m != nil {
		name = r.h.cfg.Workflow
	}
	r.wfName = name
	if r.in.Workflow == nil {
		if m == nil {
			probs.add("workflow", "missing: send the workflow in ComfyUI's API format (in ComfyUI: Workflow → Export (API)); this worker has no default workflow")
			return
		}
		r.wf = r.h.cfg.Workflows[name].Clone()
		r.fromPackage = true
		return
	}
	wf, err := comfy.ParseWorkflow(r.in.Workflow)
	if err != nil {
		probs.add("workflow", "%s", workflowMessage(err))
		return
	}
	r.wf = wf
}

// workflowMessage explains why a workflow cannot be parsed.
func workflowMessage(err error) string {
	if errors.Is(err, comfy.ErrUIFormat) {
		return "this is a ComfyUI UI workflow (nodes and links), not the API format the server runs; " +
			"export it with Workflow → Export (API) in ComfyUI (enable the dev mode options in older versions)"
	}
	return strings.TrimPrefix(err.Error(), "comfy: ")
}

// planImages checks the images' names and sizes and plans their uploads;
// image params are planned too. No data is decoded yet.
func (r *jobRun) planImages(probs *problems) {
	lim := &r.h.cfg.Limits
	byName := map[string]*upload{}
	for i, img := range r.in.Images {
		field := fmt.Sprintf("images[%d]", i)
		if img.Name == "" {
			continue // reported by DecodeInput
		}
		if msg := checkFileName(img.Name); msg != "" {
			probs.add(field+".name", "%q %s", truncate(img.Name, 60), msg)
			continue
		}
		if prev, dup := byName[img.Name]; dup {
			probs.add(field+".name", "%q is also the name of %s; give every image its own name", img.Name, prev.field)
			continue
		}
		u := &upload{field: field, name: img.Name, server: r.tag + "_" + img.Name, source: img.Image}
		byName[img.Name] = u
		r.uploads = append(r.uploads, u)
	}
	if m := r.h.cfg.Manifest; m != nil {
		for _, prm := range m.Params() {
			if prm.Type != comfy.ParamImage && prm.Type != comfy.ParamMask {
				continue
			}
			raw, given := r.in.Params[prm.Name]
			if !given || jsonscan.Kind(raw) != "a string" {
				continue // absent, or a wrong type Apply reports
			}
			field := "params." + prm.Name
			sc := jsonscan.New(raw)
			v, err := sc.Bytes()
			if err != nil {
				probs.add(field, "%v", err)
				continue
			}
			if u, ok := byName[string(v)]; ok {
				if u.param != nil {
					probs.add(field, "image %q already fills param `%s`; send one image per param", string(v), u.param.Name)
					continue
				}
				u.param = prm
				continue
			}
			if !isURL(v) && !isDataURI(v) && len(v) < 256 && checkFileName(string(v)) == "" && strings.Contains(string(v), ".") {
				names := make([]string, 0, len(byName))
				for _, u := range r.uploads {
					names = append(names, u.name)
				}
				have := "no images were sent"
				if len(names) > 0 {
					have = "images has " + strings.Join(names, ", ")
				}
				probs.add(field, "%q names no image of this job (%s); send the image itself as base64, a data: URI or an https URL, or add it to images", truncate(string(v), 60), have)
				continue
			}
			r.uploads = append(r.uploads, &upload{field: field, server: r.tag + "_" + prm.Name, source: v, param: prm})
		}
	}
	if len(r.uploads) > lim.MaxImages {
		probs.add("images", "%d images, over the limit of %d per job", len(r.uploads), lim.MaxImages)
	}
}

// checkFileName returns why name cannot be an input file name, or "".
func checkFileName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 200:
		return "is longer than 200 bytes"
	case strings.ContainsAny(name, `/\`):
		return "holds a folder ('/' or '\\'); use a plain file name such as \"input-1.png\""
	case name == "." || name == "..":
		return "is not a file name; use one such as \"input-1.png\""
	case strings.HasPrefix(name, "."):
		return "starts with '.'; use a plain file name such as \"input-1.png\""
	case strings.TrimSpace(name) != name:
		return "starts or ends with a space"
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	}
	for _, c := range name {
		if unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune(" ._-()+,@=", c) {
			continue
		}
		return fmt.Sprintf("holds %q; use letters, digits, spaces and . _ - ( ) + , @ = only", c)
	}
	return ""
}

// loadImages decodes or fetches every planned upload and checks it is an
// image within the limits. The running total is checked as files arrive,
// so a job of many large URLs is stopped at the per-job limit rather than
// after downloading them all.
func (r *jobRun) loadImages(ctx context.Context, probs *problems) {
	lim := &r.h.cfg.Limits
	errs := make([]error, len(r.uploads))
	var (
		mu    sync.Mutex
		total int64
	)
	overTotal := fmt.Errorf("the job's images come to more than the %s limit per job; send fewer or smaller images", formatSize(lim.MaxInputBytes))
	// admit adds a file to the total, or refuses it when the job is over.
	admit := func(n int) error {
		mu.Lock()
		defer mu.Unlock()
		if total+int64(n) > lim.MaxInputBytes {
			return overTotal
		}
		total += int64(n)
		return nil
	}
	var g errgroup.Group
	g.SetLimit(4)
	for i, u := range r.uploads {
		if isURL(u.source) {
			g.Go(func() error {
				data, err := r.h.fetch.fetch(ctx, string(u.source), r.h.cfg.URLs.MaxBytes)
				if err != nil {
					errs[i] = fmt.Errorf("fetching %s: %w", redactURL(string(u.source)), err)
					return nil
				}
				if err := admit(len(data)); err != nil {
					errs[i] = err
					return nil
				}
				u.data = data
				return nil
			})
			continue
		}
		data, err := decodeImageString(u.source, lim.MaxImageBytes)
		if err == nil {
			err = admit(len(data))
		}
		if err != nil {
			errs[i] = err
			continue
		}
		u.data = data
	}
	_ = g.Wait()
	for i, u := range r.uploads {
		field := u.field
		if u.name != "" {
			field += ".image"
		}
		if errs[i] != nil {
			if errors.Is(errs[i], overTotal) {
				field = "images"
			}
			if !slices.ContainsFunc(*probs, func(p Problem) bool {
				return p.Field == field && errors.Is(errs[i], overTotal) && p.Message == overTotal.Error()
			}) {
				probs.add(field, "%v", errs[i])
			}
			continue
		}
		if int64(len(u.data)) > lim.MaxImageBytes {
			probs.add(field, "%s, over the %s limit per image; scale it down", formatSize(int64(len(u.data))), formatSize(lim.MaxImageBytes))
			continue
		}
		info, err := inspectImage(u.data, lim)
		if err != nil {
			probs.add(field, "%v", err)
			continue
		}
		u.info = info
		if u.name == "" {
			u.server += info.ext()
		}
		if u.param != nil {
			if err := u.param.CheckImageSize(info.width, info.height); err != nil {
				probs.add("params."+u.param.Name, "%s", strings.TrimPrefix(err.Error(), "param `"+u.param.Name+"`: "))
			}
		}
		u.source = nil // the decoded data is all that is needed now
	}
}

// checkWorkflow checks the workflow against the server's node classes,
// applies params and file names, and makes output names unique.
func (r *jobRun) checkWorkflow(ctx context.Context, inProbs, wfProbs *problems) error {
	info, missing, err := r.h.objectInfo(ctx, r.wf)
	if err != nil {
		return err
	}
	r.info = info
	for _, class := range missing {
		for _, n := range r.wf.Nodes() {
			if n.ClassType == class {
				*wfProbs = append(*wfProbs, Problem{Node: n.ID, ClassType: class,
					Message: fmt.Sprintf("node class %q is not installed in this ComfyUI; add the custom node that provides it to the worker image, or fix the class name", class)})
			}
		}
	}
	m := r.h.cfg.Manifest
	if len(missing) > 0 {
		// The checks below would only repeat it; the params' values can
		// still be checked.
		if m != nil && len(r.in.Params) > 0 {
			r.paramProblems(m.CheckParams(r.params()), inProbs)
		}
		return nil
	}

	// Params.
	paramsOK := true
	switch {
	case m == nil && len(r.in.Params) > 0:
		inProbs.add("params", "this worker has no package manifest, so it takes no params; set the values in the workflow instead (or start the worker with --manifest)")
	case m != nil && (r.fromPackage || len(r.in.Params) > 0):
		applied, err := m.Apply(r.wf, r.wfName, r.params(), comfy.ApplyOptions{Rand: r.h.jobRand(), Info: info})
		if err != nil {
			paramsOK = false
			r.paramProblems(err, inProbs)
		} else {
			r.applied = applied
		}
	}

	// Files: the job's names become its unique server names, and every file
	// a node loads must come with the job.
	served := map[string]bool{}
	for _, u := range r.uploads {
		served[u.server] = true
		if u.name != "" {
			r.wf.RenameFile(info, u.name, u.server)
		}
	}
	used := map[string]bool{}
	for _, fi := range r.wf.FileInputs(info) {
		if !paramsOK || len(*inProbs) > 0 {
			break // the files would be placeholders, or already reported
		}
		if fi.Value == "" || fi.Kind != "image" {
			continue
		}
		bare, ann := splitAnnotation(fi.Value)
		if served[bare] && (ann == "" || ann == " [input]") {
			used[bare] = true
			continue
		}
		if r.h.cfg.AllowServerFiles {
			continue
		}
		var names []string
		for _, u := range r.uploads {
			if u.name != "" {
				names = append(names, fmt.Sprintf("%q", u.name))
			}
		}
		sent := "no images were sent"
		if len(names) > 0 {
			sent = "the job sent " + strings.Join(names, ", ")
		}
		*inProbs = append(*inProbs, Problem{Field: "images", Node: fi.Node, ClassType: fi.Class, Input: fi.Input,
			Message: fmt.Sprintf("loads %q, which is not among the job's images (%s); add it to images with that name", fi.Value, sent)})
	}
	for _, u := range r.uploads {
		if u.name != "" && u.param == nil && !used[u.server] && len(*inProbs) == 0 {
			r.warnings = append(r.warnings, fmt.Sprintf("%s %q is not loaded by any node of the workflow", u.field, u.name))
		}
	}

	if err := r.wf.Validate(info); err != nil {
		var we *comfy.WorkflowError
		if !errors.As(err, &we) {
			return err
		}
		for _, p := range we.Problems {
			*wfProbs = append(*wfProbs, Problem{Node: p.Node, ClassType: p.Class, Input: p.Input, Message: p.Message})
		}
	}
	if len(*inProbs) > 0 || len(*wfProbs) > 0 {
		return nil
	}
	if _, err := r.wf.UniquePrefixes(r.tag); err != nil {
		return fmt.Errorf("making output names unique: %w", err)
	}
	if r.h.cfg.RandomizeSeeds {
		r.randomizeSeeds()
	}
	return nil
}

// params returns the job's params for the manifest, with image params
// replaced by the names their files are uploaded under.
func (r *jobRun) params() map[string]any {
	params := make(map[string]any, len(r.in.Params))
	for k, v := range r.in.Params {
		params[k] = v
	}
	for _, u := range r.uploads {
		if u.param != nil {
			params[u.param.Name] = u.server
		}
	}
	return params
}

// paramProblems adds the problems of a manifest check.
func (r *jobRun) paramProblems(err error, probs *problems) {
	if err == nil {
		return
	}
	var pe *comfy.ParamsError
	if !errors.As(err, &pe) {
		probs.add("params", "%v", err)
		return
	}
	for _, p := range pe.Problems {
		field := "params"
		if p.Param != "" {
			field += "." + p.Param
		}
		prob := Problem{Field: field, Node: p.Node, Input: p.Input, Message: p.Message}
		if p.Node != "" {
			prob.Message = fmt.Sprintf("param `%s`: %s", p.Param, p.Message)
			if p.Workflow != "" {
				prob.Message += fmt.Sprintf(" (in workflow %q)", p.Workflow)
			}
			if r.wf != nil {
				if n, ok := r.wf.Node(p.Node); ok {
					prob.ClassType = n.ClassType
				}
			}
		}
		*probs = append(*probs, prob)
	}
}

// randomizeSeeds gives the workflow's seeds fresh values, except those a
// param wrote.
func (r *jobRun) randomizeSeeds() {
	keep := map[[2]string]json.RawMessage{}
	if r.applied != nil {
		for _, bi := range r.applied.Inputs {
			if n, ok := r.wf.Node(bi.Node); ok {
				if v, ok := n.Input(bi.Input); ok {
					keep[[2]string{bi.Node, bi.Input}] = v.Raw()
				}
			}
		}
	}
	r.wf.RandomizeSeeds(r.h.jobRand(), r.info)
	for k, v := range keep {
		if n, ok := r.wf.Node(k[0]); ok {
			_ = n.SetInput(k[1], v)
		}
	}
}

// splitAnnotation splits a file input's value into the name and its
// " [input]"-style folder annotation.
func splitAnnotation(v string) (name, annotation string) {
	for _, t := range []string{" [input]", " [output]", " [temp]"} {
		if strings.HasSuffix(v, t) {
			return strings.TrimSuffix(v, t), t
		}
	}
	return v, ""
}
