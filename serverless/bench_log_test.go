package serverless

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

func BenchmarkLogLine(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  string
	}{
		{"short", "Finished."},
		{"5000 chars", strings.Repeat("é", 5000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			log := slog.New(NewLogHandler(io.Discard, &LogOptions{JSON: true, Secrets: []string{"rpa_KEY"}}))
			for b.Loop() {
				log.Info(c.msg, slog.String(JobIDKey, "job-1"))
			}
		})
	}
}
