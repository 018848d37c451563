package imaging

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"sync"
)

// PNGText is a tEXt chunk: a Latin-1 keyword (1..79 bytes) and its text.
type PNGText struct {
	Key, Value string
}

// pngChunkBytes is the uncompressed size of the row ranges EncodePNG
// compresses independently (and so in parallel).
const pngChunkBytes = 512 << 10

// flateWriters (one pool per level) and pngBuffers recycle the deflate state
// and the compressed output of EncodePNG across calls.
var (
	flateWriters = map[int]*sync.Pool{
		flate.BestSpeed:   {New: func() any { w, _ := flate.NewWriter(io.Discard, flate.BestSpeed); return w }},
		flate.HuffmanOnly: {New: func() any { w, _ := flate.NewWriter(io.Discard, flate.HuffmanOnly); return w }},
	}
	pngBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// huffmanOnlyMaxZeros is the share of zero bytes in filtered rows above which
// EncodePNG looks for repeated strings (deflate's fastest level): flat images
// (masks, solid colours) shrink a hundredfold that way. Below it (photos,
// noise) Huffman coding alone is about ten times faster and, on such data,
// compresses as well or better.
const huffmanOnlyMaxZeros = 0.3

// EncodePNG writes an 8-bit PNG of width×height pixels with channels samples
// per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) taken row by row from pix,
// followed by the given tEXt chunks (before the image data, as Pillow writes
// them). Rows are filtered with the "up" filter; each range of rows is then
// Huffman-coded, or deflated at the fastest level when it is mostly flat.
// Ranges are compressed independently, on all cores, and joined into a single
// zlib stream.
func EncodePNG(w io.Writer, pix []uint8, width, height, channels int, texts []PNGText) error {
	var colorType byte
	switch channels {
	case 1:
		colorType = 0
	case 2:
		colorType = 4
	case 3:
		colorType = 2
	case 4:
		colorType = 6
	default:
		return fmt.Errorf("png: cannot encode %d channels", channels)
	}
	if width <= 0 || height <= 0 || width > 1<<31-1 || height > 1<<31-1 {
		return fmt.Errorf("png: cannot encode a %dx%d image", width, height)
	}
	stride := width * channels
	if len(pix) < stride*height {
		return errors.New("png: pixel buffer too short")
	}
	for _, t := range texts {
		if len(t.Key) == 0 || len(t.Key) > 79 || strings.ContainsRune(t.Key, 0) {
			return fmt.Errorf("png: invalid tEXt keyword %q", t.Key)
		}
	}

	var hdr [13]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(width))
	binary.BigEndian.PutUint32(hdr[4:], uint32(height))
	hdr[8], hdr[9] = 8, colorType

	// Split the rows into ranges of about pngChunkBytes and compress each on
	// its own; every range but the last ends with a sync flush so that the
	// pieces concatenate into one deflate stream.
	rowsPer := pngChunkBytes / (stride + 1)
	if rowsPer < 1 {
		rowsPer = 1
	}
	parts := (height + rowsPer - 1) / rowsPer
	type piece struct {
		buf   *bytes.Buffer
		adler uint32
		n     int // uncompressed bytes
		err   error
	}
	pieces := make([]piece, parts)
	compress := func(i int) {
		y0, y1 := i*rowsPer, min((i+1)*rowsPer, height)
		raw := make([]uint8, (y1-y0)*(stride+1))
		zeros := 0
		for y := y0; y < y1; y++ {
			out := raw[(y-y0)*(stride+1):]
			row := pix[y*stride : (y+1)*stride]
			if y == 0 {
				out[0] = 0 // none
				copy(out[1:], row)
				continue
			}
			out[0] = 2 // up
			prev := pix[(y-1)*stride : y*stride]
			dst := out[1 : stride+1]
			for x := range dst {
				d := row[x] - prev[x]
				dst[x] = d
				if d == 0 {
					zeros++
				}
			}
		}
		level := flate.HuffmanOnly
		if float64(zeros) > huffmanOnlyMaxZeros*float64(len(raw)) {
			level = flate.BestSpeed
		}
		buf := pngBuffers.Get().(*bytes.Buffer)
		buf.Reset()
		pool := flateWriters[level]
		fw := pool.Get().(*flate.Writer)
		fw.Reset(buf)
		_, err := fw.Write(raw)
		if err == nil {
			if i == parts-1 {
				err = fw.Close()
			} else {
				err = fw.Flush()
			}
		}
		pool.Put(fw)
		pieces[i] = piece{buf: buf, adler: adler32.Checksum(raw), n: len(raw), err: err}
	}
	workers := min(runtime.GOMAXPROCS(0), parts)
	if workers <= 1 {
		for i := range pieces {
			compress(i)
		}
	} else {
		var wg sync.WaitGroup
		next := make(chan int)
		for k := 0; k < workers; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					compress(i)
				}
			}()
		}
		for i := range pieces {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	defer func() {
		for _, p := range pieces {
			if p.buf != nil {
				pngBuffers.Put(p.buf)
			}
		}
	}()

	cw := &chunkWriter{w: w}
	cw.write(pngSignature)
	cw.chunk("IHDR", hdr[:])
	for _, t := range texts {
		cw.chunk("tEXt", append(append([]byte(t.Key), 0), t.Value...))
	}
	adler := uint32(1)
	first := true
	for i, p := range pieces {
		if p.err != nil {
			return fmt.Errorf("png: deflate: %w", p.err)
		}
		data := p.buf.Bytes()
		if first {
			data = append([]byte{0x78, 0x01}, data...)
			first = false
		}
		adler = adler32Combine(adler, p.adler, p.n)
		if i == len(pieces)-1 {
			var sum [4]byte
			binary.BigEndian.PutUint32(sum[:], adler)
			data = append(data, sum[:]...)
		}
		cw.chunk("IDAT", data)
	}
	cw.chunk("IEND", nil)
	return cw.err
}

// adler32Combine returns the Adler-32 of the concatenation of two byte
// strings given their checksums and the length of the second (zlib's
// adler32_combine).
func adler32Combine(a1, a2 uint32, len2 int) uint32 {
	const base = 65521
	rem := uint32(len2 % base)
	sum1 := a1 & 0xffff
	sum2 := (rem * sum1) % base
	sum1 += (a2 & 0xffff) + base - 1
	sum2 += (a1 >> 16) + (a2 >> 16) + base - rem
	if sum1 >= base {
		sum1 -= base
	}
	if sum1 >= base {
		sum1 -= base
	}
	if sum2 >= base<<1 {
		sum2 -= base << 1
	}
	if sum2 >= base {
		sum2 -= base
	}
	return sum1 | sum2<<16
}

// chunkWriter writes PNG chunks, keeping the first error.
type chunkWriter struct {
	w   io.Writer
	err error
}

func (c *chunkWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *chunkWriter) chunk(typ string, data []byte) {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
	copy(hdr[4:], typ)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(data)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	c.write(hdr[:])
	c.write(data)
	c.write(sum[:])
}
