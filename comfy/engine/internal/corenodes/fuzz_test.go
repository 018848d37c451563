package corenodes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// FuzzLoadImage writes arbitrary bytes as an input file and loads it with
// LoadImage and LoadImageMask: the result is tensors or an ExecError, never
// a panic, and never a tensor larger than the pixel limit.
func FuzzLoadImage(f *testing.F) {
	seeds, _ := filepath.Glob("../../../../testdata/conformance/comfyui/cases/*/inputs/*.*")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil && len(data) < 32<<10 {
			f.Add(data)
		}
	}
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"))
	env := benchEnv(f, nil)
	path := filepath.Join(env.InputDir, "fuzz.img")
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := loadImage(context.Background(), env, "fuzz.img", limit)
		if err != nil {
			var ee *node.ExecError
			if !errors.As(err, &ee) || ee.Type == "" || ee.Message == "" {
				t.Fatalf("error %v is not a reported exception", err)
			}
		} else {
			im, m := r.Outputs[0].(*node.Image), r.Outputs[1].(*node.Mask)
			if int64(im.B)*int64(im.H)*int64(im.W) > limit || len(im.Pix) != im.B*im.H*im.W*3 || m.B != im.B {
				t.Fatalf("image %s mask %s", im.Shape(), m.Shape())
			}
		}
		for _, ch := range []string{"alpha", "red"} {
			if r, err := loadImageMask(env, "fuzz.img", ch, limit); err == nil {
				m := r.Outputs[0].(*node.Mask)
				if len(m.Pix) != m.B*m.H*m.W {
					t.Fatalf("mask %s", m.Shape())
				}
			}
		}
	})
}
