package corenodes

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

func writeInput(t *testing.T, env *node.Env, name string, data []byte) {
	t.Helper()
	p := filepath.Join(env.InputDir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func pngBytes(t *testing.T, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func loadImageT(t *testing.T, env *node.Env, name string) (*node.Image, *node.Mask, error) {
	t.Helper()
	r, err := classMap()["LoadImage"].Execute(context.Background(), env, node.Inputs{"image": name})
	if err != nil {
		return nil, nil, err
	}
	return r.Outputs[0].(*node.Image), r.Outputs[1].(*node.Mask), nil
}

func TestLoadImageRGBAndRGBA(t *testing.T) {
	env := benchEnv(t, nil)
	rgb := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range rgb.Pix {
		rgb.Pix[i] = 255
	}
	rgb.Pix[0] = 51
	writeInput(t, env, "rgb.png", pngBytes(t, rgb))
	im, m, err := loadImageT(t, env, "rgb.png")
	if err != nil {
		t.Fatal(err)
	}
	if im.Shape() != "[1, 2, 3, 3]" || im.Pix[0] != float32(51)/255 {
		t.Fatalf("image %s first %v", im.Shape(), im.Pix[0])
	}
	// No alpha: a 64×64 zero mask, whatever the image size.
	if m.Shape() != "[1, 64, 64]" || slices.ContainsFunc(m.Pix, func(v float32) bool { return v != 0 }) {
		t.Fatalf("mask %s", m.Shape())
	}

	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	copy(nrgba.Pix, []uint8{10, 20, 30, 0, 40, 50, 60, 51})
	writeInput(t, env, "sub/rgba.png", pngBytes(t, nrgba))
	im, m, err = loadImageT(t, env, "sub/rgba.png")
	if err != nil {
		t.Fatal(err)
	}
	// Colour under transparent pixels is kept; MASK = 1 - alpha.
	wantPix(t, "rgba image", im.Pix, []float32{10.0 / 255, 20.0 / 255, 30.0 / 255, 40.0 / 255, 50.0 / 255, 60.0 / 255})
	wantPix(t, "rgba mask", m.Pix, []float32{1, 1 - float32(51)/255})
}

func TestLoadImageAnnotatedAndMissing(t *testing.T) {
	env := benchEnv(t, nil)
	g := image.NewGray(image.Rect(0, 0, 1, 1))
	data := pngBytes(t, g)
	if err := os.WriteFile(filepath.Join(env.OutputDir, "o.png"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadImageT(t, env, "o.png [output]"); err != nil {
		t.Fatal(err)
	}
	validate := classMap()["LoadImage"].ValidateInputs
	if err := validate(env, node.Inputs{"image": "o.png [output]"}); err != nil {
		t.Errorf("annotated file rejected: %v", err)
	}
	err := validate(env, node.Inputs{"image": "nope.png"})
	if err == nil || err.Error() != "Invalid image file: nope.png" {
		t.Errorf("missing file: %v", err)
	}
	if err := validate(env, node.Inputs{"image": "../../etc/passwd"}); err == nil {
		t.Error("a path leaving the input folder validated")
	}
	_, _, err = loadImageT(t, env, "nope.png")
	wantExecError(t, err, "FileNotFoundError")
	os.MkdirAll(filepath.Join(env.InputDir, "dir.png"), 0o755)
	_, _, err = loadImageT(t, env, "dir.png")
	wantExecError(t, err, "IsADirectoryError")
	writeInput(t, env, "junk.png", []byte("this is not an image"))
	_, _, err = loadImageT(t, env, "junk.png")
	if ee := wantExecError(t, err, "PIL.UnidentifiedImageError"); !strings.HasPrefix(ee.Message, "cannot identify image file '") {
		t.Errorf("message %q", ee.Message)
	}
}

func TestLoadImageIsChangedAndOptions(t *testing.T) {
	env := benchEnv(t, nil)
	writeInput(t, env, "b.png", pngBytes(t, image.NewGray(image.Rect(0, 0, 1, 1))))
	writeInput(t, env, "a.webp", []byte("x"))
	writeInput(t, env, "notes.txt", []byte("x"))
	writeInput(t, env, "sub/deep.png", []byte("x"))
	c := classMap()["LoadImage"]
	opts, err := c.DynamicOptions(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := opts["image"]; !slices.Equal(got, []string{"a.webp", "b.png"}) {
		t.Errorf("options %v", got)
	}
	h1, err := c.IsChanged(env, node.Inputs{"image": "b.png"})
	if err != nil || len(h1) != 64 {
		t.Fatalf("hash %q %v", h1, err)
	}
	writeInput(t, env, "b.png", pngBytes(t, image.NewGray(image.Rect(0, 0, 2, 1))))
	if h2, _ := c.IsChanged(env, node.Inputs{"image": "b.png"}); h2 == h1 {
		t.Error("IS_CHANGED did not change with the file")
	}
	if !slices.Equal(c.ValidateSkips, []string{"image"}) {
		t.Errorf("ValidateSkips %v", c.ValidateSkips)
	}
}

func TestLoadImageGIFBatch(t *testing.T) {
	env := benchEnv(t, nil)
	pal := color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	var frames []*image.Paletted
	for i := 0; i < 3; i++ {
		f := image.NewPaletted(image.Rect(0, 0, 4, 2), pal)
		for j := range f.Pix {
			f.Pix[j] = uint8(i % 3)
		}
		frames = append(frames, f)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, &gif.GIF{Image: frames, Delay: []int{1, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	writeInput(t, env, "anim.gif", buf.Bytes())
	im, m, err := loadImageT(t, env, "anim.gif")
	if err != nil {
		t.Fatal(err)
	}
	if im.B != 3 || m.B != 3 || m.W != 64 {
		t.Fatalf("image %s mask %s", im.Shape(), m.Shape())
	}
	if im.Pix[im.Offset(1, 0, 0)] != 1 || im.Pix[im.Offset(2, 0, 0)+2] != 1 {
		t.Errorf("frames not in order")
	}
}

func TestLoadImageMaskChannels(t *testing.T) {
	env := benchEnv(t, nil)
	nrgba := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	copy(nrgba.Pix, []uint8{51, 102, 153, 204})
	writeInput(t, env, "c.png", pngBytes(t, nrgba))
	load := func(name, ch string) []float32 {
		r, err := classMap()["LoadImageMask"].Execute(context.Background(), env, node.Inputs{"image": name, "channel": ch})
		if err != nil {
			t.Fatal(err)
		}
		return r.Outputs[0].(*node.Mask).Pix
	}
	wantPix(t, "red", load("c.png", "red"), []float32{0.2})
	wantPix(t, "blue", load("c.png", "blue"), []float32{0.6})
	wantPix(t, "alpha is inverted", load("c.png", "alpha"), []float32{1 - float32(204)/255})
	// A grey image has an opaque alpha: mask 0.
	writeInput(t, env, "g.png", pngBytes(t, image.NewGray(image.Rect(0, 0, 2, 2))))
	wantPix(t, "grey alpha", load("g.png", "alpha"), []float32{0, 0, 0, 0})
}
