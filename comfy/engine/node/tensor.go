package node

import "fmt"

// Image is ComfyUI's IMAGE: a batch of B images of H×W pixels with C channels
// (3 or 4), stored row-major as [B][H][W][C] float32.
type Image struct {
	B, H, W, C int
	Pix        []float32
}

// NewImage returns a zeroed image batch.
func NewImage(b, h, w, c int) *Image {
	return &Image{B: b, H: h, W: w, C: c, Pix: make([]float32, b*h*w*c)}
}

// Offset returns the index in Pix of channel 0 of pixel (x, y) of image n.
func (im *Image) Offset(n, y, x int) int { return ((n*im.H+y)*im.W + x) * im.C }

// Frame returns the pixels of image n of the batch, sharing storage.
func (im *Image) Frame(n int) []float32 {
	sz := im.H * im.W * im.C
	return im.Pix[n*sz : (n+1)*sz]
}

// Shape returns a description like "[1, 160, 200, 3]", as torch prints a shape.
func (im *Image) Shape() string { return fmt.Sprintf("[%d, %d, %d, %d]", im.B, im.H, im.W, im.C) }

// Mask is ComfyUI's MASK: a batch of B single-channel H×W planes, row-major
// [B][H][W] float32, where 1.0 selects a pixel.
type Mask struct {
	B, H, W int
	Pix     []float32
}

// NewMask returns a zeroed mask batch.
func NewMask(b, h, w int) *Mask {
	return &Mask{B: b, H: h, W: w, Pix: make([]float32, b*h*w)}
}

// Frame returns plane n of the batch, sharing storage.
func (m *Mask) Frame(n int) []float32 {
	sz := m.H * m.W
	return m.Pix[n*sz : (n+1)*sz]
}

// Shape returns a description like "[1, 160, 200]".
func (m *Mask) Shape() string { return fmt.Sprintf("[%d, %d, %d]", m.B, m.H, m.W) }
