package scaffold

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/comfypod/comfypod/packages"
)

// The template names Options.Template takes.
const (
	// TemplateImageBrush is the Image Brush style transfer (FLUX.1 Fill +
	// Redux), with a model-free preview workflow.
	TemplateImageBrush = "image-brush"
	// TemplateVideo is image to dance video (SCAIL on WanVideoWrapper), with
	// a model-free preview workflow.
	TemplateVideo = "video"
	// TemplateBlank is a minimal model-free workflow and manifest that runs
	// on the comfypod engine.
	TemplateBlank = "blank"
)

// TemplateDefault is the template Write uses when Options.Template is empty.
const TemplateDefault = TemplateBlank

// MaxNameLength is the longest package name Write accepts.
const MaxNameLength = 64

var (
	// ErrNotEmpty means the target folder holds files and Options.Force is
	// not set.
	ErrNotEmpty = errors.New("folder is not empty")
	// ErrUnknownTemplate means Options.Template names no template.
	ErrUnknownTemplate = errors.New("unknown template")
	// ErrInvalidName means the package name is not a valid package name.
	ErrInvalidName = errors.New("invalid package name")
)

//go:embed all:templates/blank
var blankFiles embed.FS

// Template is a package comfypod init can write.
type Template struct {
	// Name is what Options.Template takes.
	Name string
	// Summary says in one line what the package does.
	Summary string
	// Package is the template's own package name; Write replaces it with
	// the new package's name in every file.
	Package string
	// Title is the template's title (hub.json title, README heading); Write
	// replaces it with the new package's title.
	Title string

	files fs.FS
}

// Files returns the template's files, rooted at the package folder, as they
// are before any name is substituted.
func (t Template) Files() fs.FS { return t.files }

// Templates returns every template, in the order comfypod init lists them.
func Templates() []Template {
	blank, err := fs.Sub(blankFiles, "templates/blank")
	if err != nil {
		// The folder is embedded at build time; Sub fails only for an
		// invalid path, which this is not.
		panic(fmt.Sprintf("scaffold: embedded blank template: %v", err))
	}
	return []Template{
		{
			Name:    TemplateImageBrush,
			Summary: "paint a reference image's style into the masked area of a target image (FLUX.1 Fill + Redux), with a model-free preview",
			Package: packages.ImageBrush,
			Title:   "Image Brush",
			files:   packages.ImageBrushFS(),
		},
		{
			Name:    TemplateVideo,
			Summary: "animate a character image into a dance video (SCAIL on WanVideoWrapper, a driving video in through VHS_LoadVideo, the video out through VHS_VideoCombine), with a model-free preview",
			Package: packages.DanceSCAIL,
			Title:   "Dance SCAIL",
			files:   packages.DanceSCAILFS(),
		},
		{
			Name:    TemplateBlank,
			Summary: "a minimal model-free workflow and manifest that runs on the comfypod engine: the start of your own package",
			Package: "my-workflow",
			Title:   "My Workflow",
			files:   blank,
		},
	}
}

// Lookup returns the template called name.
func Lookup(name string) (Template, error) {
	var names []string
	for _, t := range Templates() {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Template{}, fmt.Errorf("%w %q: choose one of %s", ErrUnknownTemplate, name, strings.Join(names, ", "))
}

// Options say what Write writes.
type Options struct {
	// Template is the template's name; "" means TemplateDefault.
	Template string
	// Name is the new package's name: lower-case letters, digits and
	// dashes, starting with a letter. "" derives it from the folder's name
	// (see NameFromDir).
	Name string
	// Force lets Write write into a folder that is not empty, replacing the
	// template's files there and keeping every other file.
	Force bool
}

// Result says what Write wrote.
type Result struct {
	// Dir is the package folder.
	Dir string
	// Name and Title are the package's name and title.
	Name, Title string
	// Template is the template used.
	Template string
	// Files are the files written, relative to Dir with forward slashes,
	// sorted.
	Files []string
	// Replaced are the Files that existed before and were overwritten
	// (only with Options.Force).
	Replaced []string
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$`)

// ValidateName reports whether name can name a package: lower-case ASCII
// letters and digits in words joined by single dashes or underscores,
// starting with a letter, at most MaxNameLength characters. Package names go
// into image tags and output folders, hence the strict rule.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w %q: longer than %d characters", ErrInvalidName, name, MaxNameLength)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%w %q: use lower-case letters and digits in words joined by dashes, starting with a letter, e.g. %q", ErrInvalidName, name, suggestName(name))
	}
	return nil
}

// NameFromDir derives a package name from a folder's name: "My Brush" gives
// "my-brush". It returns "" when nothing usable is left.
func NameFromDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return suggestName(filepath.Base(abs))
}

// suggestName lower-cases s and turns every run of other characters into
// one dash.
func suggestName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	out := strings.TrimLeft(b.String(), "0123456789-")
	if len(out) > MaxNameLength {
		out = strings.TrimRight(out[:MaxNameLength], "-")
	}
	return out
}

// TitleOf turns a package name into a title: "my-brush" gives "My Brush".
func TitleOf(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// Write writes a new package into dir from the template opts names.
//
// dir is created if missing (with its parents). A folder that holds anything
// is refused with ErrNotEmpty unless opts.Force is set. A new package is
// written into a temporary folder beside dir and renamed into place, so it
// appears complete or not at all; with Force each file is written beside its
// target and renamed over it, and files the template does not have are kept.
func Write(ctx context.Context, dir string, opts Options) (*Result, error) {
	tname := opts.Template
	if tname == "" {
		tname = TemplateDefault
	}
	tmpl, err := Lookup(tname)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		if name = NameFromDir(dir); name == "" {
			return nil, fmt.Errorf("%w: cannot derive one from the folder name %q; give one, e.g. my-package", ErrInvalidName, filepath.Base(dir))
		}
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	title := TitleOf(name)
	if name == tmpl.Package {
		title = tmpl.Title
	}
	files, err := render(ctx, tmpl, name, title)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: dir, Name: name, Title: title, Template: tmpl.Name}
	for _, f := range files {
		res.Files = append(res.Files, f.name)
	}

	empty, exists, err := emptyDir(dir)
	if err != nil {
		return nil, err
	}
	if !empty {
		if !opts.Force {
			return nil, fmt.Errorf("%s: %w; choose a new folder, or use --force to overwrite the template's files there (other files are kept)", dir, ErrNotEmpty)
		}
		res.Replaced, err = writeInto(ctx, dir, files)
		return res, err
	}
	return res, writeNew(ctx, dir, exists, files)
}

// file is one rendered file of a template.
type file struct {
	name string // slash-separated, relative to the package folder
	data []byte
	mode fs.FileMode
}

// render reads the template's files and substitutes name and title.
func render(ctx context.Context, tmpl Template, name, title string) ([]file, error) {
	var r *strings.Replacer
	if name != tmpl.Package {
		r = strings.NewReplacer(tmpl.Package, name, tmpl.Title, title)
	}
	var out []file
	err := fs.WalkDir(tmpl.files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		data, err := fs.ReadFile(tmpl.files, p)
		if err != nil {
			return err
		}
		if r != nil && utf8.Valid(data) {
			data = []byte(r.Replace(string(data)))
		}
		mode := fs.FileMode(0o644)
		if path.Ext(p) == ".sh" {
			mode = 0o755
		}
		out = append(out, file{name: p, data: data, mode: mode})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the %s template: %w", tmpl.Name, err)
	}
	slices.SortFunc(out, func(a, b file) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// emptyDir reports whether dir is missing or an empty folder.
func emptyDir(dir string) (empty, exists bool, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if !st.IsDir() {
		return false, true, fmt.Errorf("%s exists and is not a folder", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, true, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return false, true, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, true, err
	}
	return true, true, nil
}
