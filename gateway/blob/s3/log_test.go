package s3_test

import (
	"bytes"
	"log/slog"

	"github.com/comfypod/comfypod/gateway/blob/s3"
)

// fmtLog renders cfg the way a slog text handler would.
func fmtLog(cfg s3.Config) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("storage", "s3", cfg)
	return b.String()
}
