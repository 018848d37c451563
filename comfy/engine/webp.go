package engine

import (
	"container/heap"
	"encoding/binary"
	"image"
	"io"
)

// writeWebP encodes img as a lossless WebP (VP8L): no transforms and no
// backward references, one set of prefix codes for the whole image. It is
// what /view answers preview=webp with; ComfyUI's Pillow writes a lossy WebP
// at the requested quality, which a client displays the same way.
func writeWebP(w io.Writer, img *image.NRGBA, alpha bool) error {
	width, height := img.Rect.Dx(), img.Rect.Dy()
	if width < 1 || height < 1 || width > 1<<14 || height > 1<<14 {
		return errWebPSize
	}
	// Histograms of the four channels.
	var hist [4][256]int
	for y := 0; y < height; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*width]
		for x := 0; x < width; x++ {
			p := row[4*x : 4*x+4]
			a := p[3]
			if !alpha {
				a = 255
			}
			hist[0][p[1]]++ // green
			hist[1][p[0]]++ // red
			hist[2][p[2]]++ // blue
			hist[3][a]++
		}
	}
	bw := &bitWriter{}
	bw.write(0x2f, 8)
	bw.write(uint64(width-1), 14)
	bw.write(uint64(height-1), 14)
	if alpha {
		bw.write(1, 1)
	} else {
		bw.write(0, 1)
	}
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes

	alphabet := [5]int{256 + 24, 256, 256, 256, 40}
	var codes [4]prefixCode
	for i := 0; i < 4; i++ {
		codes[i] = writePrefixCode(bw, hist[i][:], alphabet[i])
	}
	writePrefixCode(bw, []int{1}, alphabet[4]) // distances are never used
	for y := 0; y < height; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*width]
		for x := 0; x < width; x++ {
			p := row[4*x : 4*x+4]
			a := p[3]
			if !alpha {
				a = 255
			}
			codes[0].put(bw, int(p[1]))
			codes[1].put(bw, int(p[0]))
			codes[2].put(bw, int(p[2]))
			codes[3].put(bw, int(a))
		}
	}
	data := bw.bytes()

	size := len(data)
	pad := size & 1
	var hdr [20]byte
	copy(hdr[0:4], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(4+8+size+pad))
	copy(hdr[8:12], "WEBP")
	copy(hdr[12:16], "VP8L")
	binary.LittleEndian.PutUint32(hdr[16:20], uint32(size))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if pad == 1 {
		_, err := w.Write([]byte{0})
		return err
	}
	return nil
}

type webpError string

func (e webpError) Error() string { return string(e) }

const errWebPSize = webpError("WebP images are at most 16384 pixels on a side")

// bitWriter writes bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (b *bitWriter) write(v uint64, n uint) {
	b.acc |= v << b.nbits
	b.nbits += n
	for b.nbits >= 8 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc >>= 8
		b.nbits -= 8
	}
}

func (b *bitWriter) bytes() []byte {
	if b.nbits > 0 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc, b.nbits = 0, 0
	}
	return b.buf
}

// prefixCode is a canonical prefix code: per symbol its length and its code
// with the bits reversed (ready to write least significant first).
type prefixCode struct {
	lengths []uint8
	codes   []uint16
}

func (c *prefixCode) put(b *bitWriter, sym int) {
	if n := c.lengths[sym]; n > 0 {
		b.write(uint64(c.codes[sym]), uint(n))
	}
}

var codeLengthOrder = [19]int{17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// writePrefixCode writes the code for the histogram (over the first symbols
// of an alphabet of size n) and returns it.
func writePrefixCode(b *bitWriter, hist []int, n int) prefixCode {
	var used []int
	for s, f := range hist {
		if f > 0 {
			used = append(used, s)
		}
	}
	code := prefixCode{lengths: make([]uint8, n), codes: make([]uint16, n)}
	if len(used) <= 2 {
		// A simple code: one or two 8-bit symbols; one symbol costs no bits.
		if len(used) == 0 {
			used = []int{0}
		}
		b.write(1, 1)
		b.write(uint64(len(used)-1), 1)
		b.write(1, 1) // 8-bit symbols
		b.write(uint64(used[0]), 8)
		if len(used) == 2 {
			b.write(uint64(used[1]), 8)
			code.lengths[used[0]], code.lengths[used[1]] = 1, 1
			code.codes[used[0]], code.codes[used[1]] = 0, 1
		}
		return code
	}
	lengths := huffmanLengths(hist, n, 15)
	copy(code.lengths, lengths)
	canonicalCodes(code.lengths, code.codes)

	// The lengths themselves are written as literals 0..15 with a second
	// prefix code (at most 7 bits).
	clHist := make([]int, 19)
	for _, l := range code.lengths {
		clHist[l]++
	}
	nonzero := 0
	for _, f := range clHist {
		if f > 0 {
			nonzero++
		}
	}
	if nonzero < 2 {
		// A prefix code needs two symbols to be complete; give an unused
		// one the other half.
		if clHist[0] == 0 {
			clHist[0] = 1
		} else {
			clHist[1] = 1
		}
	}
	clLengths := huffmanLengths(clHist, 19, 7)
	clCodes := make([]uint16, 19)
	canonicalCodes(clLengths, clCodes)
	numCL := 4
	for i := 18; i >= 4; i-- {
		if clLengths[codeLengthOrder[i]] != 0 {
			numCL = i + 1
			break
		}
	}
	b.write(0, 1) // a normal code
	b.write(uint64(numCL-4), 4)
	for i := 0; i < numCL; i++ {
		b.write(uint64(clLengths[codeLengthOrder[i]]), 3)
	}
	b.write(0, 1) // every symbol's length follows
	cl := prefixCode{lengths: clLengths, codes: clCodes}
	for _, l := range code.lengths {
		cl.put(b, int(l))
	}
	return code
}

// huffmanLengths returns code lengths for the histogram (n symbols, unused
// ones 0), no longer than limit. When a Huffman code would be longer, the
// counts are flattened and the code built again.
func huffmanLengths(hist []int, n, limit int) []uint8 {
	freq := make([]int, n)
	copy(freq, hist)
	for {
		lengths, maxLen := huffmanBuild(freq)
		if maxLen <= limit {
			return lengths
		}
		for i, f := range freq {
			if f > 0 {
				freq[i] = f/2 + 1
			}
		}
	}
}

type hNode struct {
	freq        int
	sym         int // leaf symbol, or -1
	left, right *hNode
}

type hHeap []*hNode

func (h hHeap) Len() int { return len(h) }
func (h hHeap) Less(i, j int) bool {
	if h[i].freq != h[j].freq {
		return h[i].freq < h[j].freq
	}
	return h[i].sym < h[j].sym
}
func (h hHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hHeap) Push(x any)   { *h = append(*h, x.(*hNode)) }
func (h *hHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func huffmanBuild(freq []int) ([]uint8, int) {
	lengths := make([]uint8, len(freq))
	h := &hHeap{}
	for s, f := range freq {
		if f > 0 {
			*h = append(*h, &hNode{freq: f, sym: s})
		}
	}
	heap.Init(h)
	for h.Len() > 1 {
		a := heap.Pop(h).(*hNode)
		b := heap.Pop(h).(*hNode)
		heap.Push(h, &hNode{freq: a.freq + b.freq, sym: -1, left: a, right: b})
	}
	maxLen := 0
	var walk func(n *hNode, depth int)
	walk = func(n *hNode, depth int) {
		if n.sym >= 0 {
			lengths[n.sym] = uint8(depth)
			maxLen = max(maxLen, depth)
			return
		}
		walk(n.left, depth+1)
		walk(n.right, depth+1)
	}
	if h.Len() == 1 {
		walk((*h)[0], 0)
	}
	return lengths, maxLen
}

// canonicalCodes assigns canonical codes (shorter first, then by symbol) and
// stores them bit-reversed.
func canonicalCodes(lengths []uint8, codes []uint16) {
	var count [16]int
	for _, l := range lengths {
		if l > 0 {
			count[l]++
		}
	}
	var next [16]int
	code := 0
	for l := 1; l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for s, l := range lengths {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		var r uint16
		for i := uint8(0); i < l; i++ {
			r = r<<1 | uint16(c>>i&1)
		}
		codes[s] = r
	}
}
