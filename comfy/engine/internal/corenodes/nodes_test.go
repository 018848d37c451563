package corenodes

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

// run executes class name with the given inputs on a scratch environment.
func run(t testing.TB, name string, in node.Inputs) (*node.Result, error) {
	t.Helper()
	c, ok := classMap()[name]
	if !ok {
		t.Fatalf("no class %s", name)
	}
	env := benchEnv(t, nil)
	return c.Execute(context.Background(), env, in)
}

func mustExec(t testing.TB, name string, in node.Inputs) *node.Result {
	t.Helper()
	r, err := run(t, name, in)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// img builds a 1-image batch from pixel values.
func img(w, h, c int, pix ...float32) *node.Image {
	if len(pix) != w*h*c {
		panic("img: wrong pixel count")
	}
	return &node.Image{B: 1, H: h, W: w, C: c, Pix: pix}
}

func mask(w, h int, pix ...float32) *node.Mask {
	if len(pix) != w*h {
		panic("mask: wrong pixel count")
	}
	return &node.Mask{B: 1, H: h, W: w, Pix: pix}
}

func wantPix(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

func wantExecError(t *testing.T, err error, typ string) *node.ExecError {
	t.Helper()
	var ee *node.ExecError
	if !errors.As(err, &ee) || ee.Type != typ {
		t.Fatalf("error %v, want a %s", err, typ)
	}
	return ee
}

func TestClassesMatchObjectInfo(t *testing.T) {
	classes := Classes()
	if len(classes) != 30 {
		t.Fatalf("%d classes, want 30", len(classes))
	}
	seen := map[string]bool{}
	for _, c := range classes {
		if seen[c.Name()] {
			t.Errorf("class %s twice", c.Name())
		}
		seen[c.Name()] = true
		if c.Execute == nil {
			t.Errorf("%s has no Execute", c.Name())
		}
	}
	for _, name := range []string{"LoadImage", "LoadImageMask"} {
		in, _ := classMap()[name].Info.Input("image")
		if len(in.Options) != 0 {
			t.Errorf("%s carries a captured file list", name)
		}
	}
}

func TestImageInvert(t *testing.T) {
	r := mustExec(t, "ImageInvert", node.Inputs{"image": img(2, 1, 4, 0, 0.25, 1, 0.5, 0.1, 0.2, 0.3, 0.4)})
	wantPix(t, "invert", r.Outputs[0].(*node.Image).Pix, []float32{1, 0.75, 0, 0.5, 0.9, 0.8, 0.7, 0.6})
}

func TestEmptyImage(t *testing.T) {
	r := mustExec(t, "EmptyImage", node.Inputs{"width": int64(2), "height": int64(1), "batch_size": int64(2), "color": int64(0xff8000)})
	im := r.Outputs[0].(*node.Image)
	if im.B != 2 || im.W != 2 || im.H != 1 || im.C != 3 {
		t.Fatalf("shape %s", im.Shape())
	}
	half := float32(128.0 / 255)
	wantPix(t, "colour", im.Pix[:3], []float32{1, half, 0})
	if _, err := run(t, "EmptyImage", node.Inputs{"width": int64(16384), "height": int64(16384), "batch_size": int64(4096), "color": int64(0)}); err == nil {
		t.Error("a 3 TB image was allocated")
	}
}

func TestFlipAndRotate(t *testing.T) {
	// 0 1 2
	// 3 4 5
	src := img(3, 2, 1, 0, 1, 2, 3, 4, 5)
	for _, c := range []struct {
		class, input, value string
		w, h                int
		want                []float32
	}{
		{"ImageFlip", "flip_method", "x-axis: vertically", 3, 2, []float32{3, 4, 5, 0, 1, 2}},
		{"ImageFlip", "flip_method", "y-axis: horizontally", 3, 2, []float32{2, 1, 0, 5, 4, 3}},
		{"ImageRotate", "rotation", "none", 3, 2, []float32{0, 1, 2, 3, 4, 5}},
		{"ImageRotate", "rotation", "90 degrees", 2, 3, []float32{3, 0, 4, 1, 5, 2}},
		{"ImageRotate", "rotation", "180 degrees", 3, 2, []float32{5, 4, 3, 2, 1, 0}},
		{"ImageRotate", "rotation", "270 degrees", 2, 3, []float32{2, 5, 1, 4, 0, 3}},
	} {
		r := mustExec(t, c.class, node.Inputs{"image": src, c.input: c.value})
		out := r.Outputs[0].(*node.Image)
		if out.W != c.w || out.H != c.h {
			t.Fatalf("%s %s: %dx%d", c.class, c.value, out.W, out.H)
		}
		wantPix(t, c.class+" "+c.value, out.Pix, c.want)
	}
}

func TestImageCrop(t *testing.T) {
	src := img(3, 2, 1, 0, 1, 2, 3, 4, 5)
	crop := func(x, y, w, h int64) *node.Image {
		return mustExec(t, "ImageCrop", node.Inputs{"image": src, "x": x, "y": y, "width": w, "height": h}).Outputs[0].(*node.Image)
	}
	wantPix(t, "inner", crop(1, 0, 2, 2).Pix, []float32{1, 2, 4, 5})
	// x beyond the image is clamped to the last column.
	out := crop(10, 0, 5, 5)
	if out.W != 1 || out.H != 2 {
		t.Fatalf("clamped crop %dx%d", out.W, out.H)
	}
	wantPix(t, "clamped", out.Pix, []float32{2, 5})
}

func TestBatchNodes(t *testing.T) {
	a := img(1, 1, 3, 0.1, 0.2, 0.3)
	rep := mustExec(t, "RepeatImageBatch", node.Inputs{"image": a, "amount": int64(3)}).Outputs[0].(*node.Image)
	if rep.B != 3 {
		t.Fatalf("repeat batch %d", rep.B)
	}
	rep.Pix[3] = 0.9 // tell the copies apart
	from := mustExec(t, "ImageFromBatch", node.Inputs{"image": rep, "batch_index": int64(1), "length": int64(5)}).Outputs[0].(*node.Image)
	if from.B != 2 || from.Pix[0] != 0.9 {
		t.Fatalf("from batch: %d images, first %v", from.B, from.Pix[0])
	}
	last := mustExec(t, "ImageFromBatch", node.Inputs{"image": rep, "batch_index": int64(99), "length": int64(1)}).Outputs[0].(*node.Image)
	if last.B != 1 {
		t.Fatalf("index clamped to the last image: %d", last.B)
	}
	// image2 of another size is resized (bilinear, centre crop) to image1.
	b := img(2, 2, 3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
	joined := mustExec(t, "ImageBatch", node.Inputs{"image1": a, "image2": b}).Outputs[0].(*node.Image)
	if joined.B != 2 || joined.W != 1 || joined.H != 1 {
		t.Fatalf("batch shape %s", joined.Shape())
	}
	wantPix(t, "batched", joined.Pix, []float32{0.1, 0.2, 0.3, 0.5, 0.5, 0.5})
	// RGB with RGBA: the RGB one gets an opaque alpha.
	rgba := img(1, 1, 4, 0, 0, 0, 0.5)
	mixed := mustExec(t, "ImageBatch", node.Inputs{"image1": rgba, "image2": a}).Outputs[0].(*node.Image)
	wantPix(t, "mixed", mixed.Pix, []float32{0, 0, 0, 0.5, 0.1, 0.2, 0.3, 1})
}

func TestMaskConversions(t *testing.T) {
	rgb := img(2, 1, 3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
	m := mustExec(t, "ImageToMask", node.Inputs{"image": rgb, "channel": "green"}).Outputs[0].(*node.Mask)
	wantPix(t, "green", m.Pix, []float32{0.2, 0.5})
	_, err := run(t, "ImageToMask", node.Inputs{"image": rgb, "channel": "alpha"})
	if ee := wantExecError(t, err, "IndexError"); ee.Message != "index 3 is out of bounds for dimension 3 with size 3" {
		t.Errorf("message %q", ee.Message)
	}
	back := mustExec(t, "MaskToImage", node.Inputs{"mask": m}).Outputs[0].(*node.Image)
	wantPix(t, "mask to image", back.Pix, []float32{0.2, 0.2, 0.2, 0.5, 0.5, 0.5})
	solid := mustExec(t, "SolidMask", node.Inputs{"value": 0.37, "width": int64(2), "height": int64(1)}).Outputs[0].(*node.Mask)
	wantPix(t, "solid", solid.Pix, []float32{0.37, 0.37})
	inv := mustExec(t, "InvertMask", node.Inputs{"mask": solid}).Outputs[0].(*node.Mask)
	wantPix(t, "inverted", inv.Pix, []float32{1 - float32(0.37), 1 - float32(0.37)})
	thr := mustExec(t, "ThresholdMask", node.Inputs{"mask": mask(3, 1, 0.2, 0.5, 0.7), "value": 0.5}).Outputs[0].(*node.Mask)
	wantPix(t, "threshold", thr.Pix, []float32{0, 0, 1})
	crop := mustExec(t, "CropMask", node.Inputs{"mask": mask(3, 2, 0, 1, 2, 3, 4, 5), "x": int64(1), "y": int64(1), "width": int64(9), "height": int64(9)}).Outputs[0].(*node.Mask)
	wantPix(t, "crop", crop.Pix, []float32{4, 5})
}

// TestFeatherMask pins ComfyUI's off-by-one: the right/bottom loops index
// column -x, so x = 0 scales the first column and the last column gets 2/n.
func TestFeatherMask(t *testing.T) {
	ones := func() *node.Mask { return mask(4, 1, 1, 1, 1, 1) }
	feather := func(l, r int64) []float32 {
		return mustExec(t, "FeatherMask", node.Inputs{"mask": ones(), "left": l, "top": int64(0), "right": r, "bottom": int64(0)}).Outputs[0].(*node.Mask).Pix
	}
	wantPix(t, "left 2", feather(2, 0), []float32{0.5, 1, 1, 1})
	wantPix(t, "right 3", feather(0, 3), []float32{float32(1.0 / 3), 1, 1, float32(2.0 / 3)})
	wantPix(t, "left beyond width", feather(9, 0), []float32{0.25, 0.5, 0.75, 1})
}

func TestMaskComposite(t *testing.T) {
	dst := mask(3, 1, 0.2, 0.5, 0.9)
	src := mask(2, 1, 0.5, 0.8)
	comp := func(op string, x int64) []float32 {
		return mustExec(t, "MaskComposite", node.Inputs{"destination": dst, "source": src, "x": x, "y": int64(0), "operation": op}).Outputs[0].(*node.Mask).Pix
	}
	wantPix(t, "multiply", comp("multiply", 1), []float32{0.2, 0.25, float32(0.9) * float32(0.8)})
	wantPix(t, "add clamps", comp("add", 1), []float32{0.2, 1, 1})
	wantPix(t, "subtract clamps", comp("subtract", 0), []float32{0, 0, 0.9})
	// round() is half-to-even: 0.5 is false.
	wantPix(t, "and", comp("and", 1), []float32{0.2, 0, 1})
	wantPix(t, "or", comp("or", 1), []float32{0.2, 0, 1})
	wantPix(t, "or at 0", comp("or", 0), []float32{0, 1, 0.9})
	wantPix(t, "xor", comp("xor", 0), []float32{0, 1, 0.9})
	// Entirely outside: only the clamp applies.
	wantPix(t, "outside", comp("add", 3), []float32{0.2, 0.5, 0.9})
}

func TestGrowMask(t *testing.T) {
	dot := make([]float32, 25)
	dot[12] = 1
	growWH := func(w, h int, expand int64, tapered bool, pix []float32) []float32 {
		return mustExec(t, "GrowMask", node.Inputs{"mask": mask(w, h, slices.Clone(pix)...), "expand": expand, "tapered_corners": tapered}).Outputs[0].(*node.Mask).Pix
	}
	grow := func(expand int64, tapered bool, pix []float32) []float32 { return growWH(5, 5, expand, tapered, pix) }
	plus := grow(1, true, dot)
	square := grow(1, false, dot)
	diamond := grow(2, true, dot)
	for y := 0; y < 5; y++ {
		for x := 0; x < 5; x++ {
			dx, dy := abs(x-2), abs(y-2)
			want := func(b bool) float32 {
				if b {
					return 1
				}
				return 0
			}
			if plus[y*5+x] != want(dx+dy <= 1) || square[y*5+x] != want(max(dx, dy) <= 1) || diamond[y*5+x] != want(dx+dy <= 2) {
				t.Fatalf("grow at (%d,%d): plus %v square %v diamond %v", x, y, plus[y*5+x], square[y*5+x], diamond[y*5+x])
			}
		}
	}
	// Erosion of the 3×3 square back to the dot.
	wantPix(t, "erode", grow(-1, false, square), dot)
	// Against k rounds of a plain 3×3 max filter with edge replication.
	rng := rand.New(rand.NewPCG(1, 1))
	pix := make([]float32, 9*7)
	for i := range pix {
		pix[i] = float32(rng.IntN(10)) / 10
	}
	for _, k := range []int{1, 2, 5} {
		for _, tapered := range []bool{true, false} {
			ref := slices.Clone(pix)
			for range k {
				ref = filter3x3(ref, 9, 7, tapered)
			}
			wantPix(t, "random grow", growWH(9, 7, int64(k), tapered, pix), ref)
		}
	}
}

// filter3x3 is one round of scipy's grey_dilation with a 3×3 footprint
// (corners off when tapered) and "reflect" borders.
func filter3x3(p []float32, w, h int, tapered bool) []float32 {
	out := make([]float32, len(p))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			best := float32(math.Inf(-1))
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if tapered && dx != 0 && dy != 0 {
						continue
					}
					// scipy's reflect: -1 → 0, n → n-1.
					yy, xx := max(0, min(h-1, y+dy)), max(0, min(w-1, x+dx))
					best = max(best, p[yy*w+xx])
				}
			}
			out[y*w+x] = best
		}
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestImagePadForOutpaint(t *testing.T) {
	src := img(4, 4, 3, make([]float32, 48)...)
	r := mustExec(t, "ImagePadForOutpaint", node.Inputs{"image": src, "left": int64(2), "top": int64(0), "right": int64(0), "bottom": int64(0), "feathering": int64(1)})
	out, m := r.Outputs[0].(*node.Image), r.Outputs[1].(*node.Mask)
	if out.W != 6 || out.H != 4 || out.Pix[0] != 0.5 || out.Pix[out.Offset(0, 0, 2)] != 0 {
		t.Fatalf("padded image %s: %v", out.Shape(), out.Pix[:9])
	}
	// Padded columns are 1; inside, only the column next to the padded side
	// (distance 0 < feathering 1) gets ((1-0)/1)^2 = 1.
	wantPix(t, "mask row", m.Pix[:6], []float32{1, 1, 1, 0, 0, 0})
	r = mustExec(t, "ImagePadForOutpaint", node.Inputs{"image": src, "left": int64(0), "top": int64(0), "right": int64(1), "bottom": int64(0), "feathering": int64(0)})
	wantPix(t, "no feathering", r.Outputs[1].(*node.Mask).Pix[:5], []float32{0, 0, 0, 0, 1})
}

func TestImageBlend(t *testing.T) {
	a := img(1, 1, 3, 0.25, 0.75, 0.5)
	b := img(1, 1, 3, 0.75, 0.25, 0.5)
	blend := func(mode string, f float64) []float32 {
		return mustExec(t, "ImageBlend", node.Inputs{"image1": a, "image2": b, "blend_factor": f, "blend_mode": mode}).Outputs[0].(*node.Image).Pix
	}
	wantPix(t, "normal 0.5", blend("normal", 0.5), []float32{0.5, 0.5, 0.5})
	wantPix(t, "multiply", blend("multiply", 1), []float32{0.1875, 0.1875, 0.25})
	wantPix(t, "screen", blend("screen", 1), []float32{0.8125, 0.8125, 0.75})
	wantPix(t, "overlay", blend("overlay", 1), []float32{0.375, 0.625, 0.5})
	wantPix(t, "difference clamps", blend("difference", 1), []float32{0, 0.5, 0})
	// soft light: b <= .5 → a - (1-2b)a(1-a); b > .5 → a + (2b-1)(g(a)-a).
	g := func(x float64) float64 {
		if x <= 0.25 {
			return ((16*x-12)*x + 4) * x
		}
		return math.Sqrt(x)
	}
	want := []float32{float32(0.25 + 0.5*(g(0.25)-0.25)), float32(0.75 - 0.5*0.75*0.25), 0.5}
	wantPix(t, "soft light", blend("soft_light", 1), want)
	_, err := run(t, "ImageBlend", node.Inputs{"image1": a, "image2": b, "blend_factor": 0.5, "blend_mode": "bogus"})
	if ee := wantExecError(t, err, "ValueError"); ee.Message != "Unsupported blend mode: bogus" {
		t.Errorf("message %q", ee.Message)
	}
	// RGBA image1 with an RGB image2: ComfyUI's alpha fix pads image1 to
	// five channels, which then fails to broadcast.
	_, err = run(t, "ImageBlend", node.Inputs{"image1": img(1, 1, 4, 0, 0, 0, 1), "image2": b, "blend_factor": 0.5, "blend_mode": "normal"})
	wantExecError(t, err, "RuntimeError")
}

func TestImageCompositeMasked(t *testing.T) {
	dst := img(3, 1, 1, 0, 0, 0)
	src := img(2, 1, 1, 1, 1)
	comp := func(x int64, m *node.Mask) []float32 {
		in := node.Inputs{"destination": dst, "source": src, "x": x, "y": int64(0), "resize_source": false}
		if m != nil {
			in["mask"] = m
		}
		return mustExec(t, "ImageCompositeMasked", in).Outputs[0].(*node.Image).Pix
	}
	wantPix(t, "paste", comp(1, nil), []float32{0, 1, 1})
	wantPix(t, "clipped", comp(2, nil), []float32{0, 0, 1})
	wantPix(t, "outside", comp(9, nil), []float32{0, 0, 0})
	wantPix(t, "masked", comp(0, mask(2, 1, 0.25, 1)), []float32{0.25, 1, 0})
	if dst.Pix[0] != 0 {
		t.Error("destination modified in place")
	}
}

func TestJoinAndSplitAlpha(t *testing.T) {
	rgb := img(2, 1, 3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
	joined := mustExec(t, "JoinImageWithAlpha", node.Inputs{"image": rgb, "alpha": mask(2, 1, 0, 0.75)}).Outputs[0].(*node.Image)
	wantPix(t, "joined", joined.Pix, []float32{0.1, 0.2, 0.3, 1, 0.4, 0.5, 0.6, 0.25})
	r := mustExec(t, "SplitImageWithAlpha", node.Inputs{"image": joined})
	wantPix(t, "split rgb", r.Outputs[0].(*node.Image).Pix, rgb.Pix)
	wantPix(t, "split mask", r.Outputs[1].(*node.Mask).Pix, []float32{0, 0.75})
	plain := mustExec(t, "SplitImageWithAlpha", node.Inputs{"image": rgb}).Outputs[1].(*node.Mask)
	wantPix(t, "no alpha", plain.Pix, []float32{0, 0})
}

func TestImageScaleSizes(t *testing.T) {
	src := img(3, 2, 1, 0, 0, 0, 0, 0, 0)
	size := func(method string, w, h int64, crop string) (int, int) {
		out := mustExec(t, "ImageScale", node.Inputs{"image": src, "upscale_method": method, "width": w, "height": h, "crop": crop}).Outputs[0].(*node.Image)
		return out.W, out.H
	}
	// height 3 keeps the aspect: round(3*3/2) = round(4.5) = 4 (half to even).
	if w, h := size("bilinear", 0, 3, "disabled"); w != 4 || h != 3 {
		t.Errorf("width 0: %dx%d", w, h)
	}
	if w, h := size("nearest-exact", 0, 0, "disabled"); w != 3 || h != 2 {
		t.Errorf("both 0: %dx%d", w, h)
	}
	out := mustExec(t, "ImageScaleBy", node.Inputs{"image": src, "upscale_method": "area", "scale_by": 0.5}).Outputs[0].(*node.Image)
	if out.W != 2 || out.H != 1 { // round(1.5) = 2, round(1.0) = 1
		t.Errorf("scale by 0.5: %dx%d", out.W, out.H)
	}
	_, err := run(t, "ImageScaleBy", node.Inputs{"image": src, "upscale_method": "bilinear", "scale_by": 0.1})
	wantExecError(t, err, "RuntimeError")
}

func TestBlurAndSharpen(t *testing.T) {
	flat := img(4, 4, 3, slices.Repeat([]float32{0.4}, 48)...)
	blur := mustExec(t, "ImageBlur", node.Inputs{"image": flat, "blur_radius": int64(2), "sigma": 1.0}).Outputs[0].(*node.Image)
	wantPix(t, "blurred flat", blur.Pix, flat.Pix)
	// An impulse spreads symmetrically and keeps its sum.
	imp := img(5, 5, 1, make([]float32, 25)...)
	imp.Pix[12] = 1
	b := mustExec(t, "ImageBlur", node.Inputs{"image": imp, "blur_radius": int64(1), "sigma": 1.0}).Outputs[0].(*node.Image)
	var sum float32
	for _, v := range b.Pix {
		sum += v
	}
	if math.Abs(float64(sum-1)) > 1e-5 || b.Pix[11] != b.Pix[13] || b.Pix[7] != b.Pix[17] || !(b.Pix[12] > b.Pix[11]) {
		t.Errorf("blurred impulse %v", b.Pix)
	}
	_, err := run(t, "ImageBlur", node.Inputs{"image": flat, "blur_radius": int64(4), "sigma": 1.0})
	if ee := wantExecError(t, err, "RuntimeError"); ee.Message != "Argument #4: Padding size should be less than the corresponding input dimension, but got: padding (4, 4) at dimension 3 of input [1, 3, 4, 4]" {
		t.Errorf("message %q", ee.Message)
	}
	same := mustExec(t, "ImageSharpen", node.Inputs{"image": imp, "sharpen_radius": int64(1), "sigma": 1.0, "alpha": 0.0}).Outputs[0].(*node.Image)
	wantPix(t, "alpha 0 sharpen", same.Pix, imp.Pix)
	sharp := mustExec(t, "ImageSharpen", node.Inputs{"image": imp, "sharpen_radius": int64(1), "sigma": 1.0, "alpha": 1.0}).Outputs[0].(*node.Image)
	if sharp.Pix[12] != 1 || sharp.Pix[11] != 0 {
		t.Errorf("sharpened impulse not clamped: %v", sharp.Pix)
	}
}

func TestGaussianTaps(t *testing.T) {
	taps := gaussianTaps(5, 1)
	var sum float64
	for _, v := range taps {
		sum += v
	}
	// linspace(-1, 1, 5) = -1, -0.5, 0, 0.5, 1.
	if math.Abs(sum-1) > 1e-12 || taps[0] != taps[4] || math.Abs(taps[1]/taps[2]-math.Exp(-0.125)) > 1e-12 {
		t.Errorf("taps %v", taps)
	}
	if linspace32(-1, 1, 7, 3) != 0 || linspace32(-1, 1, 7, 6) != 1 {
		t.Error("linspace ends")
	}
}

func TestTorchSumAndSleef(t *testing.T) {
	// Nine values: the eight-lane vector, then the leftover added first.
	g := []float32{1e8, 1, 1, 1, 1, 1, 1, 1, -1e8}
	// sum = (-1e8) + 1e8 + 1 + ... + 1 = 7 in this order; sequentially it
	// would lose the ones to rounding.
	if got := torchSum(g); got != 7 {
		t.Errorf("torchSum = %v, want 7", got)
	}
	for _, x := range []float32{0, -0.5, -3, -20} {
		got, want := sleefExpf(x), float32(math.Exp(float64(x)))
		if math.Abs(float64(got-want)) > 2e-7*float64(want) {
			t.Errorf("sleefExpf(%v) = %v, want about %v", x, got, want)
		}
	}
	if sleefExpf(-200) != 0 || !math.IsInf(float64(sleefExpf(200)), 1) {
		t.Error("sleefExpf range limits")
	}
	// The separable path agrees with the exact 2-D convolution within a
	// level on a random image.
	rng := rand.New(rand.NewPCG(2, 2))
	im := node.NewImage(1, 17, 23, 3)
	for i := range im.Pix {
		im.Pix[i] = rng.Float32()
	}
	exact, err := conv2d(context.Background(), im, gaussianKernel32(7, 1.2), 7)
	if err != nil {
		t.Fatal(err)
	}
	sep, err := separableConv(context.Background(), im, gaussianTaps(7, 1.2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range exact.Pix {
		if d := int(imaging.FloatToByte(exact.Pix[i])) - int(imaging.FloatToByte(sep.Pix[i])); d > 1 || d < -1 {
			t.Fatalf("sample %d: exact %v separable %v", i, exact.Pix[i], sep.Pix[i])
		}
	}
}
