package serverless

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestLogJSONLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(NewLogHandler(&b, &LogOptions{JSON: true, Level: slog.LevelDebug, Secrets: []string{"rpa_KEY1234"}}))
	log.Info("Started.", slog.String(JobIDKey, "abc-u1"))
	log.Warn("no job")
	log.Debug("café 😀\x01\"\\\n\t\x7f", slog.String(JobIDKey, "j"))
	log.Error("key rpa_KEY1234", slog.Int("attempt", 2), slog.Any("err", errors.New("a b")), slog.String(BatchIDKey, "b7"))
	want := `{"requestId": "abc-u1", "message": "Started.", "level": "INFO"}
{"requestId": null, "message": "no job", "level": "WARN"}
{"requestId": "j", "message": "caf\u00e9 \ud83d\ude00\u0001\"\\\n\t\u007f", "level": "DEBUG"}
{"requestId": null, "message": "[batchId=b7] key REDACTED attempt=2 err=\"a b\"", "level": "ERROR"}
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestLogText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(NewLogHandler(&b, &LogOptions{Level: LevelTrace}))
	jl := log.With(slog.String(JobIDKey, "job-1")).WithGroup("g").With(slog.String("k", "v"))
	jl.Info("hello", slog.Int("n", 1))
	log.Log(context.Background(), LevelTrace, "deep", slog.Group("req", slog.String("path", "/x")))
	log.Error("bad", slog.String("empty", ""))
	want := "INFO   | job-1 | hello g.k=v g.n=1\n" +
		"TRACE  | deep req.path=/x\n" +
		"ERROR  | bad empty=\"\"\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestLogLevels(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	h := NewLogHandler(&b, &LogOptions{Level: slog.LevelWarn})
	log := slog.New(h)
	log.Info("hidden")
	log.Warn("shown")
	if b.String() != "WARN   | shown\n" {
		t.Errorf("got %q", b.String())
	}
	off := slog.New(NewLogHandler(&b, &LogOptions{Level: LevelOff}))
	off.Error("never")
	if strings.Contains(b.String(), "never") {
		t.Error("LevelOff logged")
	}
	// Config.NewLogger picks JSON on RunPod and scrubs the key.
	b.Reset()
	(&Config{EndpointID: "ep", APIKey: "rpa_ABCDEF"}).NewLogger(&b).Info("k=rpa_ABCDEF")
	if b.String() != `{"requestId": null, "message": "k=REDACTED", "level": "INFO"}`+"\n" {
		t.Errorf("NewLogger: %q", b.String())
	}
}

func TestTruncateMiddle(t *testing.T) {
	t.Parallel()
	msg := strings.Repeat("a", 2048) + strings.Repeat("m", 904) + strings.Repeat("z", 2048)
	got := truncateMiddle(msg, MaxLogMessage)
	want := strings.Repeat("a", 2048) + "\n...TRUNCATED 904 CHARACTERS...\n" + strings.Repeat("z", 2048)
	if got != want {
		t.Errorf("truncated message has %d chars, want %d", len(got), len(want))
	}
	if s := strings.Repeat("é", 4096); truncateMiddle(s, MaxLogMessage) != s {
		t.Error("4096 two-byte characters were cut")
	}
	s := strings.Repeat("é", 4097)
	got = truncateMiddle(s, MaxLogMessage)
	if !utf8.ValidString(got) || !strings.Contains(got, "\n...TRUNCATED 1 CHARACTERS...\n") || utf8.RuneCountInString(got) != 4096+len("\n...TRUNCATED 1 CHARACTERS...\n") {
		t.Errorf("runes cut wrong: %d runes", utf8.RuneCountInString(got))
	}
	// Through the handler.
	var b bytes.Buffer
	slog.New(NewLogHandler(&b, nil)).Info(msg)
	if b.String() != "INFO   | "+want+"\n" {
		t.Error("the handler does not truncate")
	}
}

func TestLogConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(NewLogHandler(&b, &LogOptions{JSON: true}))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With(slog.Int("g", i))
			for range 100 {
				l.Info("line")
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Errorf("%d lines", n)
	}
}
