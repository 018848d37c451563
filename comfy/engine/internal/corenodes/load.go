package corenodes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

// imageExtensions are the file extensions Python's mimetypes maps to an
// image/* type (ComfyUI's filter_files_content_types(files, ["image"])).
var imageExtensions = map[string]bool{
	"png": true, "jpg": true, "jpeg": true, "jpe": true, "gif": true, "webp": true,
	"bmp": true, "tif": true, "tiff": true, "ico": true, "svg": true, "ief": true,
	"ras": true, "pnm": true, "pbm": true, "pgm": true, "ppm": true, "rgb": true,
	"xbm": true, "xpm": true, "xwd": true, "heic": true, "heif": true, "avif": true,
	"pct": true, "pic": true, "pict": true,
}

func loadImageClass() *node.Class {
	return &node.Class{
		Info:           info("LoadImage"),
		Execute:        executeLoadImage,
		IsChanged:      imageFileHash,
		ValidateInputs: validateImageFile,
		ValidateSkips:  []string{"image"},
		DynamicOptions: inputImageOptions,
	}
}

func loadImageMaskClass() *node.Class {
	return &node.Class{
		Info:           info("LoadImageMask"),
		Execute:        executeLoadImageMask,
		IsChanged:      imageFileHash,
		ValidateInputs: validateImageFile,
		ValidateSkips:  []string{"image"},
		DynamicOptions: inputImageOptions,
	}
}

// inputImageOptions lists the image files directly inside the input folder,
// sorted, as LoadImage's INPUT_TYPES does.
func inputImageOptions(env *node.Env) (map[string][]string, error) {
	entries, err := os.ReadDir(env.InputDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list input folder: %w", err)
	}
	files := []string{}
	for _, e := range entries {
		name := e.Name()
		ext := name[strings.LastIndex(name, ".")+1:]
		if !strings.Contains(name, ".") || !imageExtensions[strings.ToLower(ext)] {
			continue
		}
		// os.path.isfile follows symbolic links.
		st, err := os.Stat(filepath.Join(env.InputDir, name))
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		files = append(files, name)
	}
	sort.Strings(files)
	return map[string][]string{"image": files}, nil
}

// validateImageFile is LoadImage's VALIDATE_INPUTS: the named file must exist.
func validateImageFile(env *node.Env, in node.Inputs) error {
	name := in.String("image")
	if p, err := env.InputPath(name); err == nil {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
	}
	return errors.New("Invalid image file: " + name)
}

// imageFileHash is LoadImage's IS_CHANGED: the sha256 of the file, in hex.
func imageFileHash(env *node.Env, in node.Inputs) (string, error) {
	p, err := env.InputPath(in.String("image"))
	if err != nil {
		return "", err
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openPicture reads and decodes the file named by a LoadImage value, with
// the errors Python would raise.
func openPicture(env *node.Env, name string, maxPixels int64) (*imaging.Picture, error) {
	p, err := env.InputPath(name)
	if err != nil {
		return nil, node.Errorf("ValueError", "Invalid image file: %s", name)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, node.Errorf("FileNotFoundError", "[Errno 2] No such file or directory: '%s'", p)
		case errors.Is(err, fs.ErrPermission):
			return nil, node.Errorf("PermissionError", "[Errno 13] Permission denied: '%s'", p)
		case errors.Is(err, syscall.EISDIR):
			return nil, node.Errorf("IsADirectoryError", "[Errno 21] Is a directory: '%s'", p)
		}
		return nil, node.Errorf("OSError", "cannot read image file '%s': %v", p, err)
	}
	pic, err := imaging.Decode(data, imaging.Options{MaxPixels: maxPixels})
	if err != nil {
		var bomb *imaging.BombError
		switch {
		case errors.Is(err, imaging.ErrUnknownFormat):
			return nil, node.Errorf("PIL.UnidentifiedImageError", "cannot identify image file '%s'", p)
		case errors.As(err, &bomb):
			return nil, node.Errorf("PIL.Image.DecompressionBombError", "%s", bomb.Error())
		}
		return nil, node.Errorf("OSError", "cannot decode image file '%s': %v", p, err)
	}
	return pic, nil
}

// executeLoadImage is LoadImage.load_image: every frame, EXIF-transposed,
// mode I scaled by 1/255, converted to RGB; frames of another size than the
// first are skipped. The MASK is 1 - alpha where the frame has an alpha band
// or palette transparency, else a 64×64 plane of zeros.
func executeLoadImage(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
	return loadImage(ctx, env, in.String("image"), imaging.MaxPixelsDefault)
}

// loadImage is executeLoadImage with a pixel limit for the file and for the
// whole batch.
func loadImage(ctx context.Context, env *node.Env, name string, maxPixels int64) (*node.Result, error) {
	pic, err := openPicture(env, name, maxPixels)
	if err != nil {
		return nil, err
	}
	var (
		rgbs   [][]uint8
		masks  []*node.Mask
		w, h   int
		pixels int64
	)
	for _, fr := range pic.Frames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := fr.Transposed(pic.Orientation)
		f.ScaleInt(1.0 / 255)
		if len(rgbs) == 0 {
			w, h = f.W, f.H
		}
		if f.W != w || f.H != h {
			continue
		}
		pixels += int64(w) * int64(h)
		if pixels > maxPixels {
			return nil, node.Errorf("PIL.Image.DecompressionBombError", "%s",
				(&imaging.BombError{Pixels: pixels, Limit: maxPixels}).Error())
		}
		rgbs = append(rgbs, f.RGB())
		if a := f.Alpha(); a != nil {
			m := node.NewMask(1, h, w)
			for i, v := range a {
				m.Pix[i] = 1 - u8ToF32[v]
			}
			masks = append(masks, m)
		} else {
			masks = append(masks, node.NewMask(1, 64, 64))
		}
	}
	if len(rgbs) == 0 {
		return nil, node.Errorf("IndexError", "list index out of range")
	}
	mask, err := catMasks(masks)
	if err != nil {
		return nil, err
	}
	return result(imageFromRGB(rgbs, w, h), mask), nil
}

// catMasks concatenates [1,H,W] masks along the batch dimension like
// torch.cat, with its error when the planes differ in size.
func catMasks(ms []*node.Mask) (*node.Mask, error) {
	if len(ms) == 1 {
		return ms[0], nil
	}
	h, w := ms[0].H, ms[0].W
	out := node.NewMask(len(ms), h, w)
	for i, m := range ms {
		if m.H != h {
			return nil, runtimeError("Sizes of tensors must match except in dimension 0. Expected size %d but got size %d for tensor number %d in the list.", h, m.H, i)
		}
		if m.W != w {
			return nil, runtimeError("Sizes of tensors must match except in dimension 0. Expected size %d but got size %d for tensor number %d in the list.", w, m.W, i)
		}
		copy(out.Frame(i), m.Pix)
	}
	return out, nil
}

// executeLoadImageMask is LoadImageMask.load_image: the first frame,
// EXIF-transposed, converted to RGBA (mode I scaled first) honouring
// transparency; the mask is the chosen channel / 255, inverted only for alpha.
func executeLoadImageMask(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
	return loadImageMask(env, in.String("image"), in.String("channel"), imaging.MaxPixelsDefault)
}

// loadImageMask is executeLoadImageMask with a pixel limit.
func loadImageMask(env *node.Env, name, channel string, maxPixels int64) (*node.Result, error) {
	pic, err := openPicture(env, name, maxPixels)
	if err != nil {
		return nil, err
	}
	f := pic.Frames[0].Transposed(pic.Orientation)
	var rgba []uint8
	if f.Mode == imaging.ModeRGBA {
		rgba = f.Pix
	} else {
		f.ScaleInt(1.0 / 255)
		rgba = f.RGBA()
	}
	var (
		c      int
		invert bool
	)
	switch ch := channel; {
	case strings.HasPrefix(strings.ToUpper(ch), "A"):
		c, invert = 3, true
	case strings.HasPrefix(strings.ToUpper(ch), "R"):
		c = 0
	case strings.HasPrefix(strings.ToUpper(ch), "G"):
		c = 1
	case strings.HasPrefix(strings.ToUpper(ch), "B"):
		c = 2
	default:
		// A band Pillow's RGBA does not have: a 64×64 zero mask.
		return result(node.NewMask(1, 64, 64)), nil
	}
	m := node.NewMask(1, f.H, f.W)
	for i := range m.Pix {
		v := u8ToF32[rgba[4*i+c]]
		if invert {
			v = 1 - v
		}
		m.Pix[i] = v
	}
	return result(m), nil
}
