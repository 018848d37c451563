package corenodes

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// benchImage returns a w×h photo-like RGB image: smooth gradients, a few
// shapes and a little noise, so that PNG compression has realistic work.
func benchImage(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy := float64(w)*0.4, float64(h)*0.55
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			d := math.Hypot(float64(x)-cx, float64(y)-cy) / float64(w)
			r := 255 * (0.5 + 0.5*math.Sin(6*fx+2*fy))
			g := 255 * (0.3 + 0.6*fy)
			b := 255 * (1 - d)
			if d < 0.2 {
				r, g = 230, 80
			}
			n := float64(rng.IntN(9)) - 4
			img.Set(x, y, color.RGBA{clampByte(r + n), clampByte(g + n), clampByte(b + n), 255})
		}
	}
	return img
}

func clampByte(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, v)))
}

// benchEnv returns an environment in a temporary folder with the given PNG
// files in its input folder.
func benchEnv(tb testing.TB, files map[string]image.Image) *node.Env {
	tb.Helper()
	base := tb.TempDir()
	env := &node.Env{
		InputDir:        filepath.Join(base, "input"),
		OutputDir:       filepath.Join(base, "output"),
		TempDir:         filepath.Join(base, "temp"),
		DisableMetadata: true,
		Rand:            rand.New(rand.NewPCG(1, 2)),
	}
	for _, d := range []string{env.InputDir, env.OutputDir, env.TempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for name, img := range files {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(env.InputDir, name), buf.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return env
}

// BenchmarkInvertPipeline1024 is LoadImage → ImageInvert → SaveImage on a
// 1024×1024 RGB PNG: decode, float conversion, the node, encode and write.
func BenchmarkInvertPipeline1024(b *testing.B) {
	env := benchEnv(b, map[string]image.Image{"in.png": benchImage(1024, 1024, 1)})
	classes := classMap()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		loaded, err := classes["LoadImage"].Execute(ctx, env, node.Inputs{"image": "in.png"})
		if err != nil {
			b.Fatal(err)
		}
		inv, err := classes["ImageInvert"].Execute(ctx, env, node.Inputs{"image": loaded.Outputs[0]})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := classes["SaveImage"].Execute(ctx, env, node.Inputs{"images": inv.Outputs[0], "filename_prefix": "bench/inv"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBrushChain is the image-brush workflow at 1024×1024: three
// LoadImage, ImageScale (lanczos, centre crop), ImageBlend, FeatherMask,
// ImageCompositeMasked and SaveImage.
func BenchmarkBrushChain(b *testing.B) {
	mask := image.NewGray(image.Rect(0, 0, 1024, 1024))
	for y := 0; y < 1024; y++ {
		for x := 0; x < 1024; x++ {
			if math.Hypot(float64(x-512), float64(y-480)) < 300 {
				mask.Pix[y*mask.Stride+x] = 255
			}
		}
	}
	env := benchEnv(b, map[string]image.Image{
		"target.png": benchImage(1024, 1024, 1),
		"ref.png":    benchImage(900, 760, 2),
		"mask.png":   mask,
	})
	prompt := map[string]promptNode{
		"1": {ClassType: "LoadImage", Inputs: map[string]any{"image": "target.png"}},
		"2": {ClassType: "LoadImage", Inputs: map[string]any{"image": "ref.png"}},
		"3": {ClassType: "LoadImageMask", Inputs: map[string]any{"image": "mask.png", "channel": "red"}},
		"4": {ClassType: "ImageScale", Inputs: map[string]any{"image": []any{"2", 0.0}, "upscale_method": "lanczos", "width": 1024.0, "height": 1024.0, "crop": "center"}},
		"5": {ClassType: "ImageBlend", Inputs: map[string]any{"image1": []any{"1", 0.0}, "image2": []any{"4", 0.0}, "blend_factor": 0.8, "blend_mode": "normal"}},
		"6": {ClassType: "FeatherMask", Inputs: map[string]any{"mask": []any{"3", 0.0}, "left": 16.0, "top": 16.0, "right": 16.0, "bottom": 16.0}},
		"7": {ClassType: "ImageCompositeMasked", Inputs: map[string]any{"destination": []any{"1", 0.0}, "source": []any{"5", 0.0}, "x": 0.0, "y": 0.0, "resize_source": false, "mask": []any{"6", 0.0}}},
		"8": {ClassType: "SaveImage", Inputs: map[string]any{"images": []any{"7", 0.0}, "filename_prefix": "brush/out"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		e := newEvaluator(*env) // a fresh cache: every node runs
		mustRun(b, e, prompt, "8")
	}
}

// classMap returns the core classes by name.
func classMap() map[string]*node.Class {
	m := map[string]*node.Class{}
	for _, c := range Classes() {
		m[c.Name()] = c
	}
	return m
}
