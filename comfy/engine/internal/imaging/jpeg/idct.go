package jpeg

// The inverse DCT below follows jidctint.c of the Independent JPEG Group's
// libjpeg (as carried by libjpeg-turbo); this software is based in part on
// the work of the Independent JPEG Group.

// block holds the 64 coefficients of a DCT block in natural (row-major)
// order.
type block [blockSize]int32

const blockSize = 8 * 8

// Fixed-point constants of jidctint.c: FIX(x) = round(x * 2^13).
const (
	constBits = 13
	pass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// descale is libjpeg's DESCALE: x / 2^n rounded to nearest.
func descale(x int64, n uint) int64 { return (x + 1<<(n-1)) >> n }

// rangeLimit is libjpeg's post-IDCT range limiting: the sample x (before the
// +128 level shift) is masked to 10 bits and mapped through the table
// jdmaster.c builds, which clamps to 0..255 for any sane input.
func rangeLimit(x int64) uint8 {
	i := x & 1023
	switch {
	case i < 128:
		return uint8(i + 128)
	case i < 512:
		return 255
	case i < 896:
		return 0
	}
	return uint8(i - 896)
}

// idctIslow is libjpeg's jpeg_idct_islow for a dequantised block, writing the
// 8×8 samples to dst (stride bytes apart). It is the accurate integer IDCT
// (Loeffler-Ligtenberg-Moschytz with 13-bit constants) that Pillow decodes
// with, so the output matches libjpeg-turbo's sample for sample.
func idctIslow(b *block, dst []byte, stride int) {
	var ws [blockSize]int64

	// Pass 1: columns, scaled up by 2^pass1Bits.
	for col := 0; col < 8; col++ {
		in := func(row int) int64 { return int64(b[row*8+col]) }
		if b[8+col] == 0 && b[16+col] == 0 && b[24+col] == 0 && b[32+col] == 0 &&
			b[40+col] == 0 && b[48+col] == 0 && b[56+col] == 0 {
			dc := in(0) << pass1Bits
			for row := 0; row < 8; row++ {
				ws[row*8+col] = dc
			}
			continue
		}
		o := idct1D(in(0), in(1), in(2), in(3), in(4), in(5), in(6), in(7))
		for row := 0; row < 8; row++ {
			ws[row*8+col] = descale(o[row], constBits-pass1Bits)
		}
	}

	// Pass 2: rows, descaled by 2^(pass1Bits+3) and range limited.
	for row := 0; row < 8; row++ {
		w := ws[row*8 : row*8+8]
		out := dst[row*stride : row*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := rangeLimit(descale(w[0], pass1Bits+3))
			for x := range out {
				out[x] = v
			}
			continue
		}
		o := idct1D(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
		for x := 0; x < 8; x++ {
			out[x] = rangeLimit(descale(o[x], constBits+pass1Bits+3))
		}
	}
}

// idct1D is one 8-point pass of jidctint.c before descaling: the results are
// scaled up by 2^constBits.
func idct1D(i0, i1, i2, i3, i4, i5, i6, i7 int64) [8]int64 {
	// Even part.
	z2, z3 := i2, i6
	z1 := (z2 + z3) * fix0_541196100
	tmp2 := z1 + z3*-fix1_847759065
	tmp3 := z1 + z2*fix0_765366865
	tmp0 := (i0 + i4) << constBits
	tmp1 := (i0 - i4) << constBits
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

	// Odd part.
	tmp0, tmp1, tmp2, tmp3 = i7, i5, i3, i1
	z1 = tmp0 + tmp3
	z2 = tmp1 + tmp2
	z3 = tmp0 + tmp2
	z4 := tmp1 + tmp3
	z5 := (z3 + z4) * fix1_175875602
	tmp0 *= fix0_298631336
	tmp1 *= fix2_053119869
	tmp2 *= fix3_072711026
	tmp3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 *= -fix1_961570560
	z4 *= -fix0_390180644
	z3 += z5
	z4 += z5
	tmp0 += z1 + z3
	tmp1 += z2 + z4
	tmp2 += z2 + z3
	tmp3 += z1 + z4

	return [8]int64{
		tmp10 + tmp3, tmp11 + tmp2, tmp12 + tmp1, tmp13 + tmp0,
		tmp13 - tmp0, tmp12 - tmp1, tmp11 - tmp2, tmp10 - tmp3,
	}
}
