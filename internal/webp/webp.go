// Package webp encodes images as lossless WebP (VP8L). The Go extended
// library decodes WebP but has no encoder; this one writes the subset of
// the format the worker's output conversion and the engine's /view
// previews need: the subtract-green and predictor transforms (one gradient
// predictor for the whole image) followed by Huffman-coded literals,
// without backward references or a color cache. Files are smaller than
// plain Huffman coding and decode with any WebP decoder; they are larger
// than libwebp's, which searches for repeats.
package webp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"slices"
	"sort"
)

// maxSide is the largest width or height VP8L can describe (14 bits).
const maxSide = 1 << 14

// predictorBits is log2 of the predictor transform's block size; with the
// largest block every block uses the same mode.
const predictorBits = 9

// gradientMode is VP8L predictor 12, ClampAddSubtractFull(L, T, TL).
const gradientMode = 12

// Options tune Encode; a nil *Options is the zero value.
type Options struct {
	// Opaque writes every pixel fully opaque with its colour kept, as
	// Pillow's convert("RGB") does before saving; otherwise alpha is kept.
	Opaque bool
}

// Encode writes img to w as a lossless WebP file.
func Encode(w io.Writer, img image.Image, o *Options) error {
	if o == nil {
		o = &Options{}
	}
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	if width <= 0 || height <= 0 {
		return errors.New("webp: empty image")
	}
	if width > maxSide || height > maxSide {
		return fmt.Errorf("webp: %dx%d is larger than the %d px a WebP side may have", width, height, maxSide)
	}
	argb, alpha := toARGB(img, o.Opaque)
	subtractGreen(argb)
	residuals := predict(argb, width, height)

	var bw bitWriter
	bw.write(0x2f, 8) // VP8L signature
	bw.write(uint32(width-1), 14)
	bw.write(uint32(height-1), 14)
	bw.write(b2u(alpha), 1)
	bw.write(0, 3) // version
	// Transforms, in the order the encoder applied them.
	bw.write(1, 1)
	bw.write(2, 2) // subtract green
	bw.write(1, 1)
	bw.write(0, 2) // predictor
	bw.write(predictorBits-2, 3)
	pw, ph := subSampled(width), subSampled(height)
	modes := make([]uint32, pw*ph)
	for i := range modes {
		modes[i] = gradientMode << 8 // the mode is in the green channel
	}
	writeImage(&bw, modes, false)
	bw.write(0, 1) // no more transforms
	writeImage(&bw, residuals, true)
	data := bw.bytes()

	size := len(data)
	pad := size & 1
	out := bufio.NewWriter(w)
	var hdr [20]byte
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(4+8+size+pad))
	copy(hdr[8:], "WEBPVP8L")
	binary.LittleEndian.PutUint32(hdr[16:], uint32(size))
	if _, err := out.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		return err
	}
	if pad == 1 {
		if err := out.WriteByte(0); err != nil {
			return err
		}
	}
	return out.Flush()
}

func subSampled(n int) int { return (n + 1<<predictorBits - 1) >> predictorBits }

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// toARGB returns the pixels as non-premultiplied ARGB words (all opaque
// when opaque is set) and whether any is not opaque.
func toARGB(img image.Image, opaque bool) ([]uint32, bool) {
	b := img.Bounds()
	n, ok := img.(*image.NRGBA)
	if !ok {
		n = image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(n, n.Bounds(), img, b.Min, draw.Src)
	}
	w, h := b.Dx(), b.Dy()
	out := make([]uint32, w*h)
	alpha := false
	for y := range h {
		row := n.Pix[y*n.Stride : y*n.Stride+4*w]
		for x := range w {
			p := row[4*x : 4*x+4]
			a := p[3]
			if opaque {
				a = 0xff
			}
			if a != 0xff {
				alpha = true
			}
			out[y*w+x] = uint32(a)<<24 | uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
		}
	}
	return out, alpha
}

// subtractGreen applies the subtract-green transform in place.
func subtractGreen(px []uint32) {
	for i, p := range px {
		g := (p >> 8) & 0xff
		r := ((p >> 16) - g) & 0xff
		bl := (p - g) & 0xff
		px[i] = p&0xff00ff00 | r<<16 | bl
	}
}

// predict returns the residuals of the predictor transform with the
// gradient mode everywhere (and the format's fixed rules for the first row
// and column).
func predict(px []uint32, w, h int) []uint32 {
	out := make([]uint32, len(px))
	for y := range h {
		for x := range w {
			i := y*w + x
			var pred uint32
			switch {
			case x == 0 && y == 0:
				pred = 0xff000000
			case y == 0:
				pred = px[i-1]
			case x == 0:
				pred = px[i-w]
			default:
				pred = clampAddSubtractFull(px[i-1], px[i-w], px[i-w-1])
			}
			out[i] = sub(px[i], pred)
		}
	}
	return out
}

// sub subtracts per channel, modulo 256.
func sub(a, b uint32) uint32 {
	ag := (a | 0x00ff00ff) - (b & 0xff00ff00)
	rb := (a | 0xff00ff00) - (b & 0x00ff00ff)
	return ag&0xff00ff00 | rb&0x00ff00ff
}

func clampAddSubtractFull(l, t, tl uint32) uint32 {
	var out uint32
	for s := 0; s < 32; s += 8 {
		v := int32((l>>s)&0xff) + int32((t>>s)&0xff) - int32((tl>>s)&0xff)
		v = max(0, min(255, v))
		out |= uint32(v) << s
	}
	return out
}

// Alphabet sizes of the five prefix codes (no color cache).
var alphabetSizes = [5]int{256 + 24, 256, 256, 256, 40}

// writeImage writes an entropy-coded image: no color cache, one prefix code
// group (the meta-prefix bit only for the main image), then the pixels as
// literals.
func writeImage(bw *bitWriter, px []uint32, main bool) {
	bw.write(0, 1) // no color cache
	if main {
		bw.write(0, 1) // no meta prefix codes
	}
	var hist [4][]uint32
	for c := range hist {
		hist[c] = make([]uint32, alphabetSizes[c])
	}
	for _, p := range px {
		hist[0][(p>>8)&0xff]++
		hist[1][(p>>16)&0xff]++
		hist[2][p&0xff]++
		hist[3][p>>24]++
	}
	var codes [4]prefixCode
	for c := range codes {
		codes[c] = writePrefixCode(bw, hist[c])
	}
	writePrefixCode(bw, make([]uint32, alphabetSizes[4])) // distances: unused
	for _, p := range px {
		codes[0].put(bw, (p>>8)&0xff)
		codes[1].put(bw, (p>>16)&0xff)
		codes[2].put(bw, p&0xff)
		codes[3].put(bw, p>>24)
	}
}

// prefixCode holds each symbol's code, bit-reversed for LSB-first output.
type prefixCode struct {
	bits []uint32
	lens []uint8
}

func (c prefixCode) put(bw *bitWriter, sym uint32) {
	if n := c.lens[sym]; n > 0 {
		bw.write(c.bits[sym], uint(n))
	}
}

// writePrefixCode writes the code for a histogram and returns it.
func writePrefixCode(bw *bitWriter, hist []uint32) prefixCode {
	var used []int
	for s, f := range hist {
		if f > 0 {
			used = append(used, s)
		}
	}
	lens := make([]uint8, len(hist))
	if len(used) == 0 {
		used = []int{0}
	}
	if len(used) <= 2 && used[len(used)-1] < 256 {
		// Simple code: one symbol (no bits) or two (one bit each).
		bw.write(1, 1)
		bw.write(uint32(len(used)-1), 1)
		if used[0] < 2 {
			bw.write(0, 1)
			bw.write(uint32(used[0]), 1)
		} else {
			bw.write(1, 1)
			bw.write(uint32(used[0]), 8)
		}
		if len(used) == 2 {
			bw.write(uint32(used[1]), 8)
			lens[used[0]], lens[used[1]] = 1, 1
		}
		return canonical(lens)
	}
	copy(lens, huffmanLengths(hist, 15))
	// The code lengths are themselves Huffman coded.
	var clHist [19]uint32
	for _, l := range lens {
		clHist[l]++
	}
	clLens := huffmanLengths(clHist[:], 7)
	nz := 0
	for _, l := range clLens {
		if l > 0 {
			nz++
		}
	}
	if nz == 1 {
		// A one-symbol code would be read with zero bits per length; give it
		// a partner so every decoder reads one bit.
		for s, l := range clLens {
			if l > 0 {
				clLens[s] = 1
				clLens[(s+1)%len(clLens)] = 1
				break
			}
		}
	}
	clCode := canonical(clLens)
	bw.write(0, 1)    // normal code
	bw.write(19-4, 4) // all 19 code length code lengths follow
	for _, s := range codeLengthOrder {
		bw.write(uint32(clLens[s]), 3)
	}
	bw.write(0, 1) // lengths for every symbol of the alphabet
	for _, l := range lens {
		clCode.put(bw, uint32(l))
	}
	return canonical(lens)
}

// codeLengthOrder is the order code length code lengths are written in.
var codeLengthOrder = [19]int{17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// canonical assigns canonical codes (shorter first, then by symbol) to
// lengths, bit-reversed.
func canonical(lens []uint8) prefixCode {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]uint32
	code := uint32(0)
	for l := 1; l < 16; l++ {
		code = (code + uint32(count[l-1])) << 1
		next[l] = code
	}
	pc := prefixCode{bits: make([]uint32, len(lens)), lens: lens}
	for s, l := range lens {
		if l == 0 {
			continue
		}
		pc.bits[s] = reverse(next[l], uint(l))
		next[l]++
	}
	return pc
}

func reverse(v uint32, n uint) uint32 {
	var r uint32
	for range n {
		r = r<<1 | v&1
		v >>= 1
	}
	return r
}

// huffmanLengths returns Huffman code lengths for freq, none longer than
// limit: rare symbols are counted as more frequent until the tree is
// shallow enough.
func huffmanLengths(freq []uint32, limit int) []uint8 {
	for floor := uint32(1); ; floor *= 2 {
		lens, depth := buildLengths(freq, floor)
		if depth <= limit {
			return lens
		}
	}
}

// buildLengths builds a Huffman tree over the non-zero frequencies (each
// raised to at least floor) and returns the depths and the largest one.
func buildLengths(freq []uint32, floor uint32) ([]uint8, int) {
	type node struct {
		w           uint64
		left, right int // children, -1 for a leaf
		sym         int
	}
	var nodes []node
	for s, f := range freq {
		if f > 0 {
			nodes = append(nodes, node{w: uint64(max(f, floor)), left: -1, right: -1, sym: s})
		}
	}
	lens := make([]uint8, len(freq))
	switch len(nodes) {
	case 0:
		return lens, 0
	case 1:
		lens[nodes[0].sym] = 1
		return lens, 1
	}
	// Two-queue construction over leaves sorted by weight.
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].w < nodes[j].w })
	leaves := len(nodes)
	var merged []int
	li, mi := 0, 0
	pick := func() int {
		if li < leaves && (mi >= len(merged) || nodes[li].w <= nodes[merged[mi]].w) {
			li++
			return li - 1
		}
		mi++
		return merged[mi-1]
	}
	for range leaves - 1 {
		a, b := pick(), pick()
		nodes = append(nodes, node{w: nodes[a].w + nodes[b].w, left: a, right: b, sym: -1})
		merged = append(merged, len(nodes)-1)
	}
	maxDepth := 0
	type item struct{ n, d int }
	stack := []item{{len(nodes) - 1, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := nodes[it.n]
		if n.left < 0 {
			lens[n.sym] = uint8(min(it.d, 255))
			maxDepth = max(maxDepth, it.d)
			continue
		}
		stack = append(stack, item{n.left, it.d + 1}, item{n.right, it.d + 1})
	}
	return lens, maxDepth
}

// bitWriter packs bits LSB first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	out := slices.Clone(w.buf)
	if w.nbits > 0 {
		out = append(out, byte(w.acc))
	}
	return out
}
