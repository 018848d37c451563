package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/bytesize"
	"github.com/comfypod/comfypod/internal/jsonscan"
	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/internal/suggest"
	"github.com/comfypod/comfypod/internal/truncate"
	"github.com/comfypod/comfypod/serverless"
)

// jobRun is the state of one job.
type jobRun struct {
	h     *Handler
	job   *serverless.Job
	log   *slog.Logger
	scrub redact.Secrets
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
	field   string // where it came from: "images[0]", "files[0]" or "params.target"
	dataKey string // the entry's key holding the file: "image" or "file" ("" for a param)
	name    string // the client's name ("" for a param)
	server  string // the name it is stored under: <tag>_<name>
	source  []byte // as sent: base64, data: URI or URL
	data    []byte // the file
	info    fileInfo
	param   *comfy.Param // the param it fills, if any
}

// dataField is the input field holding the file: "images[0].image",
// "files[1].file" or "params.target".
func (u *upload) dataField() string {
	if u.dataKey == "" {
		return u.field
	}
	return u.field + "." + u.dataKey
}

// accepts returns the kinds of file the upload may be: its param's, or
// any (nil) for an entry of images or files.
func (u *upload) accepts() []string {
	if u.param == nil {
		return nil
	}
	return u.param.Accepts()
}

func (h *Handler) newRun(job *serverless.Job) *jobRun {
	log := job.Logger()
	if log == nil {
		log = h.log
	}
	r := &jobRun{h: h, job: job, log: log, tag: h.newTag(), start: h.now()}
	r.scrub = h.scrub
	if job.S3Config != nil {
		r.scrub = r.scrub.With(job.S3Config.AccessSecret)
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
	r.scrub = r.scrub.With(in.ComfyOrgAPIKey)
	for _, k := range in.Unknown {
		msg := fmt.Sprintf("input key %q is not used by this worker and was ignored", k)
		if !strings.Contains(k, ".") {
			if c := suggest.Closest(k, inputKeys, 2); c != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", c)
			}
		}
		r.warnings = append(r.warnings, msg)
	}
	var inProbs, wfProbs problems
	r.checkOutputOptions(&inProbs)
	r.resolveWorkflow(&inProbs)
	r.planFiles(&inProbs)
	if len(inProbs) == 0 {
		r.loadFiles(ctx, &inProbs)
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
		probs.add("output.format", "%q is not a format the worker converts to; want png, jpeg or webp", truncate.Bytes(o.Format, 40))
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
		probs.add("output.upload", "%q: want \"s3\" or \"base64\"", truncate.Bytes(o.Upload, 40))
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
			probs.add("workflow_name", "%q: this worker has no package manifest, so it has no named workflows; send the workflow itself", truncate.Bytes(name, 40))
			return
		}
		if _, ok := r.h.cfg.Workflows[name]; !ok {
			probs.add("workflow_name", "%q is not a workflow of this package; it has %s", truncate.Bytes(name, 40), strings.Join(m.Workflows(), ", "))
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

// planFiles checks the names of the job's images and files and plans
// their uploads; file params are planned too. No data is decoded yet.
func (r *jobRun) planFiles(probs *problems) {
	lim := &r.h.cfg.Limits
	byName := map[string]*upload{}
	add := func(field, dataKey, name string, source []byte) {
		if name == "" {
			return // reported by DecodeInput
		}
		if msg := checkFileName(name); msg != "" {
			probs.add(field+".name", "%q %s", truncate.Bytes(name, 60), msg)
			return
		}
		if prev, dup := byName[name]; dup {
			probs.add(field+".name", "%q is also the name of %s; give every file its own name", name, prev.field)
			return
		}
		u := &upload{field: field, dataKey: dataKey, name: name, server: r.tag + "_" + name, source: source}
		byName[name] = u
		r.uploads = append(r.uploads, u)
	}
	for i, img := range r.in.Images {
		add(fmt.Sprintf("images[%d]", i), "image", img.Name, img.Image)
	}
	for i, f := range r.in.Files {
		add(fmt.Sprintf("files[%d]", i), "file", f.Name, f.File)
	}
	if m := r.h.cfg.Manifest; m != nil {
		for _, prm := range m.Params() {
			if !prm.IsFile() {
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
			noun := "file"
			if prm.Type == comfy.ParamImage || prm.Type == comfy.ParamMask {
				noun = "image"
			}
			if u, ok := byName[string(v)]; ok {
				if u.param != nil {
					probs.add(field, "%s %q already fills param `%s`; send one %s per param", noun, string(v), u.param.Name, noun)
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
				have := "no images or files were sent"
				if len(names) > 0 {
					have = "the job sent " + strings.Join(names, ", ")
				}
				probs.add(field, "%q names no %s of this job (%s); send the %s itself as base64, a data: URI or an https URL, or add it to images or files",
					truncate.Bytes(string(v), 60), noun, have, noun)
				continue
			}
			r.uploads = append(r.uploads, &upload{field: field, server: r.tag + "_" + prm.Name, source: v, param: prm})
		}
	}
	if len(r.uploads) > lim.MaxImages {
		probs.add("images", "%d files, over the limit of %d per job", len(r.uploads), lim.MaxImages)
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

// loadFiles decodes or fetches every planned upload and checks it is a
// file of a kind it may be, within the limits. The running total is
// checked as files arrive, so a job of many large URLs is stopped at the
// per-job limit rather than after downloading them all.
func (r *jobRun) loadFiles(ctx context.Context, probs *problems) {
	lim := &r.h.cfg.Limits
	errs := make([]error, len(r.uploads))
	var (
		mu    sync.Mutex
		total int64
	)
	noun := "images"
	if len(r.in.Files) > 0 || slices.ContainsFunc(r.uploads, func(u *upload) bool {
		return u.param != nil && u.param.Type != comfy.ParamImage && u.param.Type != comfy.ParamMask
	}) {
		noun = "files"
	}
	overTotal := fmt.Errorf("the job's %s come to more than the %s limit per job; send fewer or smaller %s", noun, bytesize.Decimal(lim.MaxInputBytes), noun)
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
				data, err := r.h.fetch.fetchFile(ctx, string(u.source), r.urlLimit(u))
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
		var data []byte
		var err error
		if k := u.accepts(); len(k) == 1 && k[0] == comfy.MediaImage {
			data, err = decodeImageString(u.source, lim.MaxImageBytes)
		} else {
			data, err = decodeFileString(u.source, max(lim.MaxImageBytes, lim.MaxVideoBytes))
		}
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
		field := u.dataField()
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
		info, err := r.checkFile(u)
		if err != nil {
			probs.add(field, "%v", err)
			continue
		}
		u.info = info
		if u.name == "" {
			u.server += info.ext()
		}
		if prm := u.param; prm != nil {
			var errs []error
			if info.width > 0 && (prm.Type == comfy.ParamImage || prm.Type == comfy.ParamMask) {
				errs = append(errs, prm.CheckImageSize(info.width, info.height))
			}
			errs = append(errs, prm.CheckFileSize(int64(len(u.data))))
			if info.seconds > 0 {
				errs = append(errs, prm.CheckDuration(info.seconds))
			}
			for _, err := range errs {
				if err != nil {
					probs.add("params."+prm.Name, "%s", strings.TrimPrefix(err.Error(), "param `"+prm.Name+"`: "))
				}
			}
		}
		u.source = nil // the decoded data is all that is needed now
	}
}

// urlLimit says how large a download of u may be, given its first bytes:
// a video or audio file (by those bytes, or by its param's kind) gets the
// video limit, anything else the image limit.
func (r *jobRun) urlLimit(u *upload) func(head []byte) (int64, string) {
	pol := &r.h.cfg.URLs
	k := u.accepts()
	media := k == nil || slices.Contains(k, comfy.MediaVideo) || slices.Contains(k, comfy.MediaAudio)
	return func(head []byte) (int64, string) {
		if f := sniffFormat(head); media && (isVideoOrAudio(f) || f == "gif" && k != nil && !slices.Contains(k, comfy.MediaImage)) {
			return pol.MaxVideoBytes, "video or audio file"
		}
		return pol.MaxBytes, "image"
	}
}

// checkFile checks an upload's data: its format, by its first bytes; that
// it is a kind of file the upload may be (an image param's file must be an
// image); the size limit of its kind; and its structure, reading its size
// or length from its header.
func (r *jobRun) checkFile(u *upload) (fileInfo, error) {
	lim := &r.h.cfg.Limits
	data := u.data
	accepts := u.accepts()
	format := sniffFormat(data)
	info := fileInfo{format: format}
	if _, known := formats[format]; known && accepts != nil && !info.canBe(accepts) &&
		!(isContainer(format) && slices.Contains(accepts, comfy.MediaAudio)) { // a container may hold sound only: known once its tracks are read
		return info, mismatch(u, info)
	}
	limit, per, hint := lim.MaxImageBytes, "image", "scale it down"
	if isVideoOrAudio(format) || format == "gif" && accepts != nil && !slices.Contains(accepts, comfy.MediaImage) {
		limit, per, hint = lim.MaxVideoBytes, "video or audio file", "send a shorter or smaller file"
	}
	if int64(len(data)) > limit {
		return info, fmt.Errorf("%s, over the %s limit per %s; %s", bytesize.Decimal(int64(len(data))), bytesize.Decimal(limit), per, hint)
	}
	switch {
	case format == "":
		if len(accepts) == 1 && accepts[0] == comfy.MediaImage {
			return info, notAnImage(data)
		}
		return info, notMedia(data, accepts)
	case slices.Contains(formats[format].kinds, comfy.MediaImage):
		img, err := inspectImage(data, lim)
		if err != nil {
			return info, err
		}
		info.width, info.height = img.width, img.height
		if format == "gif" {
			info.seconds = gifSeconds(data)
		}
	case formats[format].name != "":
		var err error
		if info, err = inspectMedia(format, data); err != nil {
			return info, err
		}
		if accepts != nil && !info.canBe(accepts) {
			return info, mismatch(u, info)
		}
	default:
		return info, notMedia(data, accepts)
	}
	return info, nil
}

// mismatch explains that a param's file is of a kind the param does not
// take.
func mismatch(u *upload, info fileInfo) error {
	what := info.describe()
	if isContainer(info.format) && !info.canBe([]string{comfy.MediaVideo}) {
		what += " with sound only"
	}
	return fmt.Errorf("this is %s; param `%s` takes %s", what, u.param.Name, describeKinds(u.accepts()))
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
	served := map[string]*upload{}
	for _, u := range r.uploads {
		served[u.server] = u
		if u.name != "" {
			r.wf.RenameFile(info, u.name, u.server)
		}
	}
	used := map[string]bool{}
	for _, fi := range r.wf.FileInputs(info) {
		if !paramsOK || len(*inProbs) > 0 {
			break // the files would be placeholders, or already reported
		}
		if fi.Value == "" {
			continue
		}
		bare, ann := splitAnnotation(fi.Value)
		if u := served[bare]; u != nil && (ann == "" || ann == " [input]") {
			used[bare] = true
			if !u.info.canBe([]string{fi.Kind}) {
				field := u.dataField()
				*inProbs = append(*inProbs, Problem{Field: field, Node: fi.Node, ClassType: fi.Class, Input: fi.Input,
					Message: fmt.Sprintf("loads %s, which is %s, but %s reads %s; %s", displayName(u), u.info.describe(), fi.Class, kindFormats[fi.Kind], loaderHint(fi.Kind, u.info))})
			}
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
		sent := "no images or files were sent"
		if len(names) > 0 {
			sent = "the job sent " + strings.Join(names, ", ")
		}
		*inProbs = append(*inProbs, Problem{Field: "images", Node: fi.Node, ClassType: fi.Class, Input: fi.Input,
			Message: fmt.Sprintf("loads %q, which is not among the job's images and files (%s); add it to images (or files) with that name", fi.Value, sent)})
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

// displayName is how a message names an upload: the job's name for it, or
// its param's file.
func displayName(u *upload) string {
	if u.name != "" {
		return strconv.Quote(u.name)
	}
	return "the file of " + u.field
}

// loaderHint says what to do about a file a loader node cannot read.
func loaderHint(kind string, info fileInfo) string {
	switch {
	case kind == comfy.MediaImage && info.canBe([]string{comfy.MediaVideo}):
		return "load it with a video loader such as VHS_LoadVideo, or send an animated GIF"
	case kind == comfy.MediaVideo && info.canBe([]string{comfy.MediaImage}):
		return "load it with LoadImage, or send a video"
	}
	return "send " + kindFormats[kind] + " there"
}

// params returns the job's params for the manifest, with file params
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
