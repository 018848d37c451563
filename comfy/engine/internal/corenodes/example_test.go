package corenodes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"

	"github.com/comfypod/comfypod/comfy/engine/internal/corenodes"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

func ExampleClasses() {
	classes := corenodes.Classes()
	fmt.Println(len(classes), "classes")
	for _, c := range classes[:4] {
		fmt.Printf("%s (%s) outputs %v\n", c.Name(), c.Info.Category, c.Info.Output)
	}
	// Output:
	// 30 classes
	// LoadImage (image) outputs [IMAGE MASK]
	// LoadImageMask (mask) outputs [MASK]
	// SaveImage (image) outputs []
	// PreviewImage (image) outputs []
}

// Example runs LoadImage → ImageInvert → SaveImage by hand on a 2×1 PNG.
func Example() {
	base, _ := os.MkdirTemp("", "corenodes-example")
	defer os.RemoveAll(base)
	env := &node.Env{
		InputDir:        filepath.Join(base, "input"),
		OutputDir:       filepath.Join(base, "output"),
		TempDir:         filepath.Join(base, "temp"),
		DisableMetadata: true,
	}
	os.MkdirAll(env.InputDir, 0o755)
	src := image.NewRGBA(image.Rect(0, 0, 2, 1))
	src.Set(0, 0, color.RGBA{255, 0, 0, 255})
	src.Set(1, 0, color.RGBA{0, 51, 255, 255})
	var buf bytes.Buffer
	png.Encode(&buf, src)
	os.WriteFile(filepath.Join(env.InputDir, "photo.png"), buf.Bytes(), 0o644)

	classes := map[string]*node.Class{}
	for _, c := range corenodes.Classes() {
		classes[c.Name()] = c
	}
	ctx := context.Background()
	loaded, err := classes["LoadImage"].Execute(ctx, env, node.Inputs{"image": "photo.png"})
	if err != nil {
		fmt.Println(err)
		return
	}
	im, mask := loaded.Outputs[0].(*node.Image), loaded.Outputs[1].(*node.Mask)
	fmt.Println("image", im.Shape(), "mask", mask.Shape())
	inverted, _ := classes["ImageInvert"].Execute(ctx, env, node.Inputs{"image": im})
	saved, err := classes["SaveImage"].Execute(ctx, env, node.Inputs{"images": inverted.Outputs[0], "filename_prefix": "demo/out"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", saved.UI["images"])

	data, _ := os.ReadFile(filepath.Join(env.OutputDir, "demo", "out_00001_.png"))
	out, _ := png.Decode(bytes.NewReader(data))
	for x := 0; x < 2; x++ {
		r, g, b, _ := out.At(x, 0).RGBA()
		fmt.Println(r>>8, g>>8, b>>8)
	}
	// Output:
	// image [1, 1, 2, 3] mask [1, 64, 64]
	// [{Filename:out_00001_.png Subfolder:demo Type:output}]
	// 0 255 255
	// 255 204 0
}

// Example_runtimeError shows a failure reported the way ComfyUI reports the
// Python exception.
func Example_runtimeError() {
	var blend *node.Class
	for _, c := range corenodes.Classes() {
		if c.Name() == "ImageBlend" {
			blend = c
		}
	}
	im := node.NewImage(1, 8, 8, 3)
	_, err := blend.Execute(context.Background(), &node.Env{}, node.Inputs{"image1": im, "image2": im, "blend_factor": 0.5, "blend_mode": "bogus"})
	var ee *node.ExecError
	if errors.As(err, &ee) {
		fmt.Printf("%s: %s\n", ee.Type, ee.Message)
	}
	// Output:
	// ValueError: Unsupported blend mode: bogus
}
