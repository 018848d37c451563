package engine

import (
	"fmt"
	"math"
	"strings"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// execution_error's current_inputs shows tensors as torch prints them
// (str(tensor)). These functions reproduce torch's default print options:
// precision 4, linewidth 80, summarising with "..." (3 edge items per
// dimension) past 1000 elements, integer mode ("0.", "1.") when every value
// is whole, scientific notation for wide ranges.

const (
	torchThreshold = 1000
	torchEdgeItems = 3
	torchLineWidth = 80
	torchPrecision = 4
)

func formatImage(im *node.Image) string {
	if im == nil {
		return "None"
	}
	return formatTensor([]int{im.B, im.H, im.W, im.C}, im.Pix)
}

func formatMask(m *node.Mask) string {
	if m == nil {
		return "None"
	}
	return formatTensor([]int{m.B, m.H, m.W}, m.Pix)
}

// formatTensor returns str(tensor) for a float32 tensor of the given shape.
func formatTensor(shape []int, data []float32) string {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) || n == 0 {
		return fmt.Sprintf("tensor([], size=(%s))", joinInts(shape))
	}
	summarize := n > torchThreshold
	strides := make([]int, len(shape))
	st := 1
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = st
		st *= shape[i]
	}
	f := newTensorFormatter(shape, strides, data, summarize)
	const prefix = "tensor("
	return prefix + f.str(0, 0, len(prefix)) + ")"
}

func joinInts(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}

type tensorFormatter struct {
	shape, strides []int
	data           []float32
	summarize      bool
	intMode, sci   bool
	width          int
}

// kept returns the indices of dimension d that are printed.
func (f *tensorFormatter) kept(d int) []int {
	size := f.shape[d]
	var idx []int
	if f.summarize && size > 2*torchEdgeItems {
		for i := 0; i < torchEdgeItems; i++ {
			idx = append(idx, i)
		}
		for i := size - torchEdgeItems; i < size; i++ {
			idx = append(idx, i)
		}
		return idx
	}
	for i := 0; i < size; i++ {
		idx = append(idx, i)
	}
	return idx
}

func newTensorFormatter(shape, strides []int, data []float32, summarize bool) *tensorFormatter {
	f := &tensorFormatter{shape: shape, strides: strides, data: data, summarize: summarize, intMode: true, width: 1}
	// Collect the (summarised) values the formatter is fitted on.
	var vals []float64
	var walk func(d, off int)
	walk = func(d, off int) {
		if d == len(shape) {
			vals = append(vals, float64(data[off]))
			return
		}
		for _, i := range f.kept(d) {
			walk(d+1, off+i*strides[d])
		}
	}
	walk(0, 0)
	var nz []float64
	for _, v := range vals {
		if !math.IsInf(v, 0) && !math.IsNaN(v) && v != 0 {
			nz = append(nz, v)
		}
	}
	if len(nz) == 0 {
		return f
	}
	lo, hi := math.Inf(1), 0.0
	for _, v := range nz {
		a := math.Abs(v)
		lo = math.Min(lo, a)
		hi = math.Max(hi, a)
		if v != math.Ceil(v) {
			f.intMode = false
		}
	}
	if f.intMode {
		if hi/lo > 1000 || hi > 1e8 {
			f.sci = true
			for _, v := range nz {
				f.width = max(f.width, len(fmt.Sprintf("%.*e", torchPrecision, v)))
			}
		} else {
			for _, v := range nz {
				f.width = max(f.width, len(fmt.Sprintf("%.0f", v))+1)
			}
		}
		return f
	}
	if hi/lo > 1000 || hi > 1e8 || lo < 1e-4 {
		f.sci = true
		for _, v := range nz {
			f.width = max(f.width, len(fmt.Sprintf("%.*e", torchPrecision, v)))
		}
	} else {
		for _, v := range nz {
			f.width = max(f.width, len(fmt.Sprintf("%.*f", torchPrecision, v)))
		}
	}
	return f
}

func (f *tensorFormatter) format(v float64) string {
	var s string
	switch {
	case f.sci:
		s = fmt.Sprintf("%.*e", torchPrecision, v)
	case f.intMode:
		s = fmt.Sprintf("%.0f", v)
		if !math.IsInf(v, 0) && !math.IsNaN(v) {
			s += "."
		}
	default:
		s = fmt.Sprintf("%.*f", torchPrecision, v)
	}
	switch {
	case math.IsNaN(v):
		s = "nan"
	case math.IsInf(v, 1):
		s = "inf"
	case math.IsInf(v, -1):
		s = "-inf"
	}
	if len(s) < f.width {
		s = strings.Repeat(" ", f.width-len(s)) + s
	}
	return s
}

func (f *tensorFormatter) str(d, off, indent int) string {
	size := f.shape[d]
	edge := f.summarize && size > 2*torchEdgeItems
	if d == len(f.shape)-1 {
		var elems []string
		for i := 0; i < size; i++ {
			if edge && i == torchEdgeItems {
				elems = append(elems, " ...")
				i = size - torchEdgeItems - 1
				continue
			}
			elems = append(elems, f.format(float64(f.data[off+i*f.strides[d]])))
		}
		perLine := max(1, (torchLineWidth-indent)/(f.width+2))
		var lines []string
		for i := 0; i < len(elems); i += perLine {
			lines = append(lines, strings.Join(elems[i:min(i+perLine, len(elems))], ", "))
		}
		return "[" + strings.Join(lines, ",\n"+strings.Repeat(" ", indent+1)) + "]"
	}
	var slices []string
	for i := 0; i < size; i++ {
		if edge && i == torchEdgeItems {
			slices = append(slices, "...")
			i = size - torchEdgeItems - 1
			continue
		}
		slices = append(slices, f.str(d+1, off+i*f.strides[d], indent+1))
	}
	sep := "," + strings.Repeat("\n", len(f.shape)-d-1) + strings.Repeat(" ", indent+1)
	return "[" + strings.Join(slices, sep) + "]"
}
