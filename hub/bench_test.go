package hub

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLintPackage lints the clean fixture package from disk: every file
// read, both JSON files, the Dockerfile, the handler and the workflow.
func BenchmarkLintPackage(b *testing.B) {
	l, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Lint(ctx, cleanPackage); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLintCorpus lints all 81 packages of the shared Hub corpus, as a
// CI job over a monorepo of packages would.
func BenchmarkLintCorpus(b *testing.B) {
	_, dirs := corpusPackages(b)
	l, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range dirs {
			if _, err := l.Lint(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(dirs)), "µs/package")
}

// BenchmarkParseJSON reads a large hub.json (80 env inputs, like
// worker-vllm's) with positions.
func BenchmarkParseJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"title": "x", "description": "y", "type": "serverless", "category": "language", "config": {"runsOn": "GPU", "containerDiskInGb": 200, "env": [`)
	for i := range 80 {
		if i > 0 {
			sb.WriteString(",\n")
		}
		sb.WriteString(`{"key": "KEY_` + strings.Repeat("X", i%7) + `", "input": {"name": "Name", "type": "number", "description": "A fairly long description of what this setting does and why.", "default": 1024, "min": 1, "max": 65536, "advanced": true}}`)
	}
	sb.WriteString("]}}")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if d := parseJSON("hub.json", data); len(d.problems) > 0 {
			b.Fatal(d.problems[0].msg)
		}
	}
}

// BenchmarkHandlerWrites scans the fixture handler.py for node writes.
func BenchmarkHandlerWrites(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(cleanPackage, "handler.py"))
	if err != nil {
		b.Fatal(err)
	}
	big := []byte(strings.Repeat(string(data), 20))
	b.SetBytes(int64(len(big)))
	b.ReportAllocs()
	for b.Loop() {
		if len(handlerWrites(big)) == 0 {
			b.Fatal("no writes")
		}
	}
}
