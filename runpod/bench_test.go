package runpod

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// BenchmarkOpenOutput decodes a 16 MiB base64 output, from a
// response held in memory and from one spooled to a temporary file.
func BenchmarkOpenOutput(b *testing.B) {
	raw := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 1, 2, 3, 4}, 2<<20)
	body := `{"id":"j","status":"COMPLETED","output":{"images":[{"filename":"a.png","type":"base64","data":"` +
		base64.StdEncoding.EncodeToString(raw) + `"}]}}`
	for _, bc := range []struct {
		name  string
		limit int64
	}{{"memory", 64 << 20}, {"spooled", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New("ep1", WithAPIKey("k"), WithMemoryLimit(bc.limit), WithTempDir(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				st, err := c.ReadStatus(strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				files, err := st.Outputs()
				if err != nil || len(files) != 1 {
					b.Fatal(files, err)
				}
				rc, err := files[0].Open(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(raw)) {
					b.Fatal(n, err)
				}
				_ = rc.Close()
				_ = st.Close()
			}
		})
	}
}

// BenchmarkDecodeStatus decodes a typical small status.
func BenchmarkDecodeStatus(b *testing.B) {
	c, err := New("ep1", WithAPIKey("k"))
	if err != nil {
		b.Fatal(err)
	}
	body := `{"delayTime":824,"executionTime":3391,"id":"sync-79164ff4-d212-44bc-9fe3-389e199a5c15","output":{"text":"hello"},"status":"COMPLETED","workerId":"1awbdsmhschpqw"}`
	b.ReportAllocs()
	for b.Loop() {
		st, err := c.ReadStatus(strings.NewReader(body))
		if err != nil || st.State != StateCompleted {
			b.Fatal(err)
		}
	}
}
