// Package imaging decodes, encodes and resamples images the way ComfyUI's
// Python stack does, so that the engine's nodes match a real ComfyUI server
// pixel for pixel.
//
// Decoding follows Pillow 9.4 over libpng, libjpeg-turbo and libwebp: Decode
// returns a Picture whose frames keep Pillow's mode ("L", "LA", "P", "RGB",
// "RGBA", "I", "1", "CMYK"), palette and colour-key transparency, so callers
// can apply Pillow's conversions (Frame.RGB, Frame.RGBA, Frame.Alpha) with the
// same quirks. JPEG is decoded with libjpeg's integer IDCT and "fancy" chroma
// upsampling, lossy WEBP with libwebp's fancy upsampler and fixed-point colour
// conversion, and GIF frames are composited like Pillow's GIF reader, so all
// four formats decode bit-exactly. Decode refuses images larger than Pillow's
// decompression-bomb limit before allocating their pixels.
//
// EncodePNG writes 8-bit PNGs quickly (filtering and deflate split across
// cores for large images) with optional tEXt chunks.
//
// The resampling functions work on float32 planes in the layout torch uses
// (channels-last [H,W,C] for images) and reproduce torch.nn.functional.interpolate
// (nearest-exact, bilinear, bicubic, area; align_corners=False, no antialias)
// and Pillow's 8-bit LANCZOS resize, including their rounding.
package imaging
