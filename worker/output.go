package worker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/bytesize"
)

// Output is a job's result, in the shape worker-comfyui's clients read
// (images[] of {filename, type, data}) plus the families it drops.
type Output struct {
	// Images are still and animated images (SaveImage, SaveAnimatedWEBP, …).
	// Always present, possibly empty, as worker-comfyui's clients expect.
	Images []File `json:"images"`
	// Videos are videos and VHS animations (VHS_VideoCombine's "gifs",
	// SaveVideo, SaveWEBM).
	Videos []File `json:"videos,omitempty"`
	// Audio are sound files (SaveAudio, …).
	Audio []File `json:"audio,omitempty"`
	// Files are other files nodes reported (3D models, custom outputs).
	Files []File `json:"files,omitempty"`
	// Text is what text-output nodes reported, in order.
	Text []string `json:"text,omitempty"`
	// Params are the values the manifest params took (defaults and drawn
	// random values included), so a result can be reproduced. Image params
	// are left out.
	Params map[string]json.RawMessage `json:"params,omitempty"`
	// Status is "success_no_images" when the workflow produced nothing, as
	// worker-comfyui reports it.
	Status string `json:"status,omitempty"`
	// Errors are non-fatal warnings: ignored input keys, outputs that could
	// not be read, output nodes ComfyUI refused.
	Errors []string `json:"errors,omitempty"`
}

// File is one output file.
type File struct {
	// Filename is the name ComfyUI gave the file, without the worker's
	// per-job tag (so "ComfyUI_00001_.png", as the workflow's prefix says).
	Filename string `json:"filename"`
	// Type is FileBase64 (Data holds the file) or FileS3URL (Data is a URL
	// to fetch it from).
	Type string `json:"type"`
	// Data is the base64 file or its URL.
	Data string `json:"data"`
	// Format is the file's media type ("image/png", "video/mp4").
	Format string `json:"format,omitempty"`
	// Node is the id of the node that wrote it.
	Node string `json:"node,omitempty"`
	// Animated marks an animated image (SaveAnimatedWEBP, SaveAnimatedPNG).
	Animated bool `json:"animated,omitempty"`
}

// File types.
const (
	FileBase64 = "base64"
	FileS3URL  = "s3_url"
)

// Output families.
const (
	familyImage = "images"
	familyVideo = "videos"
	familyAudio = "audio"
	familyFile  = "files"
)

// mediaTypes maps extensions to media types for the formats ComfyUI
// nodes write.
var mediaTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
	".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".avif": "image/avif",
	".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".avi": "video/x-msvideo",
	".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/opus", ".m4a": "audio/mp4",
	".glb": "model/gltf-binary", ".gltf": "model/gltf+json", ".obj": "model/obj",
	".txt": "text/plain", ".json": "application/json",
}

func mediaType(name string) string {
	if t, ok := mediaTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// classify puts an output file into a family.
func classify(f comfy.OutputFile) string {
	mt := mediaType(f.Filename)
	switch {
	case f.Key == "gifs" || f.Key == "video" || f.Key == "videos":
		// VHS reports mp4s and animated gifs/webps alike under "gifs".
		if strings.HasPrefix(mt, "audio/") {
			return familyAudio
		}
		if strings.HasPrefix(mt, "image/") && !strings.HasPrefix(f.Format, "video/") && mt != "image/gif" && mt != "image/webp" {
			return familyImage // a single-frame VHS output (format image/png)
		}
		return familyVideo
	case f.Key == "audio" || strings.HasPrefix(mt, "audio/"):
		return familyAudio
	case strings.HasPrefix(mt, "video/"):
		return familyVideo
	case strings.HasPrefix(mt, "image/"):
		return familyImage
	}
	return familyFile
}

// resultOverhead is what a result holds beyond the file data: names,
// types, warnings, the JSON punctuation. It is kept out of the budget for
// inline files.
const resultOverhead = 64 << 10

// collect reads the workflow's outputs from ComfyUI and returns them as
// base64 or uploads them to S3.
func (r *jobRun) collect(ctx context.Context, res *comfy.Result) (*Output, error) {
	out := &Output{Images: []File{}}
	var files []comfy.OutputFile
	animated := map[string]bool{} // node ids of animated savers
	skipped := 0
	if res != nil && res.History != nil {
		for _, no := range res.History.Outputs {
			for _, a := range no.Animated {
				if a {
					animated[no.Node] = true
				}
			}
			for _, f := range no.Files {
				if f.IsTemp() && !r.includeTemp {
					skipped++
					continue
				}
				files = append(files, f)
			}
			out.Text = append(out.Text, no.Text...)
		}
	}
	if r.applied != nil {
		for name, v := range r.applied.Values {
			if prm, ok := r.h.cfg.Manifest.Param(name); ok && prm.IsFile() {
				continue
			}
			if out.Params == nil {
				out.Params = map[string]json.RawMessage{}
			}
			out.Params[name] = v.Raw()
		}
	}
	var up *uploader
	if r.s3 != nil {
		tr := r.h.cfg.HTTPClient.Transport
		if r.s3Job {
			tr = r.h.guardedTransport()
		}
		var err error
		if up, err = newUploader(r.s3, tr, r.job.ID); err != nil {
			return nil, &Error{Kind: ErrOutput, Message: err.Error()}
		}
	}
	budget := r.h.cfg.MaxResultBytes - resultOverhead
	for _, t := range out.Text {
		budget -= int64(len(t))
	}
	var (
		used     int64
		sizes    []string
		failures []Problem
	)
	for _, f := range files {
		family := classify(f)
		name := r.publicName(f.Filename)
		file := File{Filename: name, Node: f.Node, Animated: animated[f.Node] && family == familyImage}
		var rc io.ReadCloser
		size := int64(-1)
		if family == familyImage && r.format != "" && !file.Animated && !sameFormat(name, r.format) {
			data, newName, err := r.convert(ctx, f)
			if err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				failures = append(failures, Problem{Node: f.Node, Message: fmt.Sprintf("output %s: %v", name, err)})
				continue
			}
			file.Filename = newName
			rc, size = io.NopCloser(bytes.NewReader(data)), int64(len(data))
		} else {
			d, err := r.h.client.View(ctx, f.FileRef)
			if err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				failures = append(failures, Problem{Node: f.Node, Message: fmt.Sprintf("output %s could not be read from ComfyUI: %v", name, err)})
				continue
			}
			rc, size = d, d.Size
		}
		file.Format = mediaType(file.Filename)
		if up != nil {
			url, err := up.put(ctx, file.Filename, rc, size, file.Format)
			rc.Close()
			if err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				field := ""
				if r.s3Job {
					field = "s3Config"
				}
				return nil, &Error{Kind: ErrOutput, Message: "the outputs could not be uploaded to S3", Problems: []Problem{{Field: field, Message: r.scrub.String(err.Error())}}}
			}
			file.Type, file.Data = FileS3URL, url
		} else {
			if size >= 0 && used+int64(base64.StdEncoding.EncodedLen(int(size))) > budget {
				rc.Close()
				sizes = append(sizes, fmt.Sprintf("%s %s", file.Filename, bytesize.Decimal(int64(base64.StdEncoding.EncodedLen(int(size))))))
				return nil, r.tooLarge(used+int64(base64.StdEncoding.EncodedLen(int(size))), sizes)
			}
			data, n, err := encodeBase64(rc, size, (budget-used)/4*3)
			rc.Close()
			switch {
			case errors.Is(err, errOverBudget):
				sizes = append(sizes, fmt.Sprintf("%s over %s", file.Filename, bytesize.Decimal(budget-used)))
				return nil, r.tooLarge(used+budget, sizes)
			case err != nil:
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				failures = append(failures, Problem{Node: f.Node, Message: fmt.Sprintf("output %s could not be read from ComfyUI: %v", name, err)})
				continue
			}
			used += int64(len(data))
			sizes = append(sizes, fmt.Sprintf("%s %s", file.Filename, bytesize.Decimal(int64(base64.StdEncoding.EncodedLen(int(n))))))
			file.Type, file.Data = FileBase64, data
		}
		switch family {
		case familyImage:
			out.Images = append(out.Images, file)
		case familyVideo:
			out.Videos = append(out.Videos, file)
		case familyAudio:
			out.Audio = append(out.Audio, file)
		default:
			out.Files = append(out.Files, file)
		}
	}
	delivered := len(out.Images) + len(out.Videos) + len(out.Audio) + len(out.Files)
	if len(failures) > 0 && delivered == 0 {
		return nil, &Error{Kind: ErrOutput, Message: "no output could be read from ComfyUI", Problems: failures}
	}
	for _, p := range failures {
		r.warnings = append(r.warnings, p.String())
	}
	if skipped > 0 && delivered == 0 && len(out.Text) == 0 {
		r.warnings = append(r.warnings, fmt.Sprintf("the workflow produced only %d temporary preview(s), which are left out; use SaveImage, or send \"output\": {\"include_temp\": true}", skipped))
	}
	if delivered == 0 && len(out.Text) == 0 {
		out.Status = "success_no_images"
	}
	out.Errors = r.warnings
	return out, nil
}

// publicName strips the job's tag from a file name.
func (r *jobRun) publicName(name string) string {
	if s, ok := strings.CutPrefix(name, r.tag+"_"); ok && s != "" {
		return s
	}
	if s, ok := strings.CutPrefix(name, r.tag); ok && s != "" {
		return strings.TrimLeft(s, "_")
	}
	return name
}

// tooLarge is the error for inline outputs over RunPod's result limit.
func (r *jobRun) tooLarge(total int64, sizes []string) error {
	return &Error{Kind: ErrOutput, Message: fmt.Sprintf(
		"the outputs come to at least %s as base64 (%s), over the %s RunPod accepts in a job result; "+
			"configure S3 so they are uploaded instead: set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint, or send s3Config with the job",
		bytesize.Decimal(total), strings.Join(sizes, ", "), bytesize.Decimal(r.h.cfg.MaxResultBytes))}
}

var errOverBudget = errors.New("over the result budget")

// encodeBase64 streams r into a base64 string, holding only the encoded
// text. size (when known) presizes it; more than limit bytes of input is
// errOverBudget.
func encodeBase64(r io.Reader, size, limit int64) (string, int64, error) {
	var sb strings.Builder
	if size >= 0 && size <= limit {
		sb.Grow(base64.StdEncoding.EncodedLen(int(size)))
	}
	in := make([]byte, 48<<10) // a multiple of 3: chunks encode without padding
	out := make([]byte, base64.StdEncoding.EncodedLen(len(in)))
	lr := io.LimitReader(r, max(limit, 0)+1)
	var total int64
	for {
		n, err := io.ReadFull(lr, in)
		total += int64(n)
		if total > limit {
			return "", total, errOverBudget
		}
		whole := n / 3 * 3
		encodeBase64Block(out, in[:whole])
		sb.Write(out[:whole/3*4])
		if whole < n { // the end of the input
			var tail [4]byte
			base64.StdEncoding.Encode(tail[:], in[whole:n])
			sb.Write(tail[:])
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return sb.String(), total, nil
		case err != nil:
			return "", total, err
		}
	}
}
