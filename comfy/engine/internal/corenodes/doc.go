// Package corenodes implements ComfyUI 0.3.64's model-free core node classes
// for the comfypod engine: loading and saving images, scaling, blending,
// blurring, compositing, padding, batching and the mask nodes.
//
// Classes returns them as node.Class values, each carrying the /object_info
// entry captured from a real ComfyUI server (embedded from objectinfo/) and an
// Execute that repeats ComfyUI's arithmetic: float32 tensors [B,H,W,C], the
// same order of float32 operations as torch, Python's banker's rounding in
// size computations, torch's interpolate kernels, Pillow's 8-bit lanczos,
// scipy's grey morphology, and ComfyUI's quirks (the 64×64 zero mask of
// images without alpha, FeatherMask's off-by-one, the alpha fix that pads the
// destination). Files are decoded the way Pillow does (package imaging), so a
// workflow run through the engine writes the same pixels as ComfyUI; the
// conformance test compares every case captured from the real server.
//
// Failures that ComfyUI reports as Python exceptions come back as
// *node.ExecError with the same exception type and message, e.g. ImageBlend's
// "ValueError: Unsupported blend mode: bogus" or ImageToMask's IndexError on
// the alpha of an RGB image.
//
// A tour, running LoadImage → ImageInvert → SaveImage by hand (the engine does
// this from a prompt, with validation, caching and history):
//
//	classes := map[string]*node.Class{}
//	for _, c := range corenodes.Classes() {
//		classes[c.Name()] = c
//	}
//	env := &node.Env{InputDir: "input", OutputDir: "output", TempDir: "temp"}
//	loaded, err := classes["LoadImage"].Execute(ctx, env, node.Inputs{"image": "photo.png"})
//	// loaded.Outputs = [*node.Image, *node.Mask]
//	inverted, err := classes["ImageInvert"].Execute(ctx, env, node.Inputs{"image": loaded.Outputs[0]})
//	saved, err := classes["SaveImage"].Execute(ctx, env, node.Inputs{"images": inverted.Outputs[0], "filename_prefix": "out"})
//	// saved.UI = {"images": [{"filename": "out_00001_.png", "subfolder": "", "type": "output"}]}
//
// Differences from ComfyUI that remain: bicubic resampling (ImageScale and
// ImageBlend's resize) can land one 8-bit level off on a small share of
// pixels, and so can ImageBlur and ImageSharpen on jobs too large for the
// exact 2-D convolution (more than 2^28 multiply-adds, where the separable
// form is used); only PNG, JPEG, WEBP (not animated) and GIF files are read;
// the PNG text chunks of SaveImage list the prompt's keys in sorted order, as
// Go maps keep no order.
package corenodes
