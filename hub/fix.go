package hub

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Fix is a mechanical change that fixes a finding: edits to one file that
// replace only the affected JSON values, so the rest of the file stays
// byte-identical.
type Fix struct {
	// Description says what the fix does ("unwrap the test input").
	Description string
	// Edits replace byte ranges of one file.
	Edits []Edit
}

// Edit replaces the bytes [Start, End) of File with Text. Offsets refer to
// the file as it was when linted; ApplyFixes refuses a file that changed
// since.
type Edit struct {
	// File is the file to edit, relative to the package folder.
	File string
	// Start and End are byte offsets of the replaced range.
	Start, End int
	// Text replaces the range.
	Text string
	// StartLine … EndColumn locate the replaced range (1-based, columns in
	// characters), for SARIF and editors.
	StartLine, StartColumn, EndLine, EndColumn int

	sum [sha256.Size]byte // of the file as linted
}

// replaceFix returns a fix that replaces value n of d with text.
func (c *pkgCtx) replaceFix(d *jsonDoc, n *node, text, desc string) *Fix {
	return &Fix{Description: desc, Edits: []Edit{c.edit(d, n.start, n.end, text)}}
}

// edit builds an Edit of d's file; d must have no syntax problems, so its
// text is its source.
func (c *pkgCtx) edit(d *jsonDoc, start, end int, text string) Edit {
	sl, sc := d.position(start)
	el, ec := d.position(end)
	return Edit{File: d.file, Start: start, End: end, Text: text, StartLine: sl, StartColumn: sc, EndLine: el, EndColumn: ec, sum: sha256.Sum256(d.src)}
}

// ErrFileChanged means a file was edited between linting and fixing.
var ErrFileChanged = errors.New("the file changed since it was linted; lint again")

// applyEdits applies non-overlapping edits to src; overlapping ones are
// skipped and counted.
func applyEdits(src []byte, edits []Edit) ([]byte, int, error) {
	edits = slices.Clone(edits)
	slices.SortFunc(edits, func(a, b Edit) int { return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End)) })
	var out bytes.Buffer
	last, skipped := 0, 0
	for _, e := range edits {
		if e.Start < last {
			skipped++
			continue
		}
		if e.Start < 0 || e.End < e.Start || e.End > len(src) {
			return nil, 0, fmt.Errorf("edit %d-%d is outside the file (%d bytes)", e.Start, e.End, len(src))
		}
		out.Write(src[last:e.Start])
		out.WriteString(e.Text)
		last = e.End
	}
	out.Write(src[last:])
	return out.Bytes(), skipped, nil
}

// FixResult says what ApplyFixes changed.
type FixResult struct {
	// Fixed is the number of findings whose fix was applied.
	Fixed int
	// Files are the files rewritten, relative to the package folder.
	Files []string
}

// ApplyFixes applies the fixes of findings to the package in folder dir and
// rewrites the files it changes. It refuses a file that changed since it was
// linted (ErrFileChanged) or that the edits would leave invalid, and leaves
// such files untouched. Lint again afterwards to see what is left.
func ApplyFixes(ctx context.Context, dir string, findings []Finding) (*FixResult, error) {
	byFile := map[string][]Edit{}
	count := map[string]int{}
	var order []string
	for _, f := range findings {
		if f.Fix == nil {
			continue
		}
		for _, e := range f.Fix.Edits {
			if _, ok := byFile[e.File]; !ok {
				order = append(order, e.File)
			}
			byFile[e.File] = append(byFile[e.File], e)
		}
		if len(f.Fix.Edits) > 0 {
			count[f.Fix.Edits[0].File]++
		}
	}
	res := &FixResult{}
	var errs []error
	for _, file := range order {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		edits := byFile[file]
		path := filepath.Join(dir, filepath.FromSlash(file))
		src, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sum := sha256.Sum256(src)
		if slices.ContainsFunc(edits, func(e Edit) bool { return e.sum != sum }) {
			errs = append(errs, fmt.Errorf("%s: %w", file, ErrFileChanged))
			continue
		}
		out, _, err := applyEdits(src, edits)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if d := parseJSON(file, out); len(d.problems) > 0 {
			line, col := d.position(d.problems[0].off)
			errs = append(errs, fmt.Errorf("%s: the fix would leave invalid JSON at line %d column %d (%s); file left unchanged", file, line, col, d.problems[0].msg))
			continue
		}
		if err := writeFileAtomic(path, out); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		res.Fixed += count[file]
		res.Files = append(res.Files, file)
	}
	return res, errors.Join(errs...)
}

// writeFileAtomic replaces path with data through a temporary file in the
// same folder, keeping the file's permissions.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(name, mode)); err != nil {
		_ = os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		_ = os.Remove(name)
		return err
	}
	return nil
}
