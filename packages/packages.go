// Package packages holds the RunPod packages comfypod ships, built into the
// binary: image-brush (the Image Brush style transfer, FLUX.1 Fill + Redux)
// and dance-scail (image to dance video with SCAIL and WanVideoWrapper).
//
// Each package is a complete RunPod package folder — .runpod/hub.json,
// .runpod/tests.json, the comfypod.json manifest, its workflows, a Dockerfile
// building on the comfypod worker image, a README and test_input.json — and
// passes comfypod lint with no finding. comfypod init copies them as templates;
// the Image Brush service reads their manifest and preview workflow.
//
//	fsys, err := packages.FS(packages.ImageBrush)
//	data, err := fs.ReadFile(fsys, "comfypod.json")
package packages

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
)

// The names of the shipped packages, as their folders are named.
const (
	// ImageBrush paints the style of a reference image into the masked area
	// of a target image.
	ImageBrush = "image-brush"
	// DanceSCAIL animates a character image into a dance video.
	DanceSCAIL = "dance-scail"
)

// files holds both package folders; "all:" keeps .runpod/.
//
//go:embed all:image-brush all:dance-scail
var files embed.FS

// Names returns the names of the shipped packages, sorted.
func Names() []string {
	return []string{DanceSCAIL, ImageBrush}
}

// FS returns the files of the package called name, rooted at the package
// folder (comfypod.json, .runpod/hub.json, …).
func FS(name string) (fs.FS, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("no package %q: comfypod ships %v", name, Names())
	}
	return fs.Sub(files, name)
}

// ImageBrushFS returns the files of the image-brush package.
func ImageBrushFS() fs.FS {
	return mustSub(ImageBrush)
}

// DanceSCAILFS returns the files of the dance-scail package.
func DanceSCAILFS() fs.FS {
	return mustSub(DanceSCAIL)
}

// mustSub roots files at a folder that is embedded at build time, so fs.Sub
// cannot fail for it.
func mustSub(name string) fs.FS {
	sub, err := fs.Sub(files, name)
	if err != nil {
		panic(fmt.Sprintf("packages: embedded folder %s: %v", name, err))
	}
	return sub
}
