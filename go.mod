module github.com/comfypod/comfypod

go 1.26.8

// Direct dependencies, each the well-kept library of its field; the reason is
// beside each. Everything is pure Go (no cgo).

require (
	github.com/chromedp/cdproto v0.159.0 // Chrome DevTools protocol types, used with chromedp
	github.com/chromedp/chromedp v0.23.0 // drives Debian Chromium in the web page's end-to-end tests
	github.com/coder/websocket v1.8.15 // websocket client and server (ComfyUI /ws, the engine); context-aware, no deps
	github.com/jackc/pgx/v5 v5.12.0 // PostgreSQL driver of the service store (replicas, LISTEN/NOTIFY)
	github.com/johannesboyne/gofakes3 v1.2.0 // S3-compatible server on loopback for tests of S3 uploads
	github.com/jonboulle/clockwork v0.5.0 // injectable clocks: fake time in tests of timeouts, TTLs and heartbeats
	github.com/minio/minio-go/v7 v7.4.1 // S3 SDK: worker output uploads, service output store
	github.com/moby/buildkit v0.34.2 // only frontend/dockerfile/parser: the linter reads Dockerfiles as Docker does
	github.com/prometheus/client_golang v1.25.0 // /metrics of the service
	github.com/spf13/cobra v1.10.2 // the CLI
	github.com/spf13/pflag v1.0.10 // cobra's flags (flag types the commands define)
	go.uber.org/goleak v1.3.0 // goroutine-leak checks in TestMain
	golang.org/x/image v0.47.0 // WEBP, BMP and TIFF decoding; Catmull-Rom downscaling of input images
	golang.org/x/sync v0.24.0 // errgroup
	golang.org/x/sys v0.49.0 // process checks in the worker's tests (tests only)
	golang.org/x/term v0.47.0 // terminal detection for live progress lines and colour
	golang.org/x/tools v0.52.0 // txtar, the lint rule fixtures' format (tests only)
	modernc.org/sqlite v1.61.1 // pure-Go SQLite: the service's default store, no cgo
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/containerd/typeurl/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/klauspost/compress v1.20.2 // indirect
	github.com/klauspost/cpuid/v2 v2.4.0 // indirect
	github.com/klauspost/crc32 v1.3.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/minio/crc64nvme v1.1.1 // indirect
	github.com/minio/md5-simd v1.1.2 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/planetscale/vtprotobuf v0.6.1-0.20240319094008-0393e58bdf10 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/rs/xid v1.6.0 // indirect
	github.com/ryszard/goskiplist v0.0.0-20150312221310-2dfbae5fcf46 // indirect
	github.com/tinylib/msgp v1.6.4 // indirect
	github.com/zeebo/xxh3 v1.1.0 // indirect
	go.shabbyrobe.org/gocovmerge v0.0.0-20230507111327-fa4f82cfbf4d // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/ini.v1 v1.67.3 // indirect
	modernc.org/libc v1.79.0 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)
