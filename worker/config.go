package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/serverless"
)

// Defaults applied by Config.WithDefaults. Where worker-comfyui has a value
// (readiness polling, websocket reconnects, presigned URL lifetime) it is
// kept, so its deployments behave the same.
const (
	// ComfyURLDefault is where ComfyUI listens in the worker container.
	ComfyURLDefault = "http://127.0.0.1:8188"
	// ReadyIntervalDefault is the pause between readiness polls
	// (COMFY_API_AVAILABLE_INTERVAL_MS).
	ReadyIntervalDefault = 50 * time.Millisecond
	// ReadyAttemptsDefault bounds readiness polls when nothing tells whether
	// ComfyUI's process lives (COMFY_API_AVAILABLE_MAX_RETRIES).
	ReadyAttemptsDefault = 500
	// ReconnectAttemptsDefault and ReconnectDelayDefault govern websocket
	// reconnects (WEBSOCKET_RECONNECT_ATTEMPTS, WEBSOCKET_RECONNECT_DELAY_S).
	ReconnectAttemptsDefault = 5
	ReconnectDelayDefault    = 3 * time.Second
	// ProgressIntervalDefault is the least time between two progress
	// updates sent to RunPod.
	ProgressIntervalDefault = time.Second
	// MaxImagesDefault bounds the input files of one job.
	MaxImagesDefault = 64
	// MaxImageBytesDefault bounds one input image, decoded.
	MaxImageBytesDefault = 32 << 20
	// MaxVideoBytesDefault bounds one input video or audio file, decoded:
	// what ComfyUI's upload route takes by default (--max-upload-size 100
	// MB), less room for the form around the file.
	MaxVideoBytesDefault = 96 << 20
	// MaxInputBytesDefault bounds all input images of a job, decoded.
	MaxInputBytesDefault = 128 << 20
	// MaxImageSideDefault is ComfyUI's MAX_RESOLUTION.
	MaxImageSideDefault = 16384
	// MaxImagePixelsDefault bounds width × height (64 Mi pixels: 8192²).
	MaxImagePixelsDefault = 8192 * 8192
	// URLTimeoutDefault bounds one URL fetch, redirects included.
	URLTimeoutDefault = 30 * time.Second
	// URLMaxRedirectsDefault bounds the redirects of one URL fetch.
	URLMaxRedirectsDefault = 5
	// MaxResultBytesDefault is RunPod's job-result limit
	// (serverless.MaxResultBytesDefault).
	MaxResultBytesDefault = serverless.MaxResultBytesDefault
	// S3URLExpiryDefault is the lifetime of presigned output URLs, the
	// longest S3 signatures allow (and runpod-python's rp_upload value).
	S3URLExpiryDefault = 7 * 24 * time.Hour
	// S3RegionDefault is the region signed for when none is known.
	S3RegionDefault = "us-east-1"
	// JPEGQualityDefault is the quality of output.format "jpeg".
	JPEGQualityDefault = 90
)

// Config configures a Handler. The zero value works against a ComfyUI at
// ComfyURLDefault with every default; unset fields take the XxxDefault
// values.
type Config struct {
	// ComfyURL is the ComfyUI server (ComfyURLDefault when empty).
	ComfyURL string
	// ComfyDir is ComfyUI's base folder (with input/, output/ and temp/)
	// when the worker runs on the same machine. The files of each job are
	// then deleted once it is over, so a long-lived worker's disk does not
	// fill. Without it the names are unique per job but nothing is deleted.
	ComfyDir string
	// KeepFiles keeps each job's inputs, outputs and history entry on the
	// ComfyUI side (for debugging).
	KeepFiles bool
	// HTTPClient talks to ComfyUI (a plain client when nil).
	HTTPClient *http.Client

	// Manifest is the package manifest naming the params jobs may set
	// (nil: params are refused). Workflows are its workflows, by name (from
	// Manifest.LoadWorkflows), and Workflow the default one (the manifest's
	// first when empty). A job without a workflow runs the default.
	Manifest  *comfy.Manifest
	Workflows map[string]*comfy.Workflow
	Workflow  string

	// Warmup is run once by Start so the first real job does not pay
	// ComfyUI's lazy model loading: a job input ({"workflow": …,
	// "images": …}) or a bare API-format workflow. Its failure is logged,
	// and returned by Start only with WarmupRequired.
	Warmup         json.RawMessage
	WarmupRequired bool

	// Alive tells whether ComfyUI's process still runs; readiness waits
	// while it does, and fails at once when it does not. PIDFile (ComfyUI's
	// PID, written by the container's entrypoint) is used when Alive is nil.
	// With neither, readiness gives up after ReadyAttempts polls.
	Alive         func() error
	PIDFile       string
	ReadyInterval time.Duration
	ReadyAttempts int

	// ReconnectAttempts and ReconnectDelay govern websocket reconnects
	// during a job (a negative ReconnectAttempts disables them; polling
	// /history then covers a dropped socket).
	ReconnectAttempts int
	ReconnectDelay    time.Duration

	// JobTimeout bounds a job's run; ComfyUI is interrupted when it
	// passes. Zero leaves the limit to RunPod's executionTimeout, whose
	// job-stop interrupts ComfyUI the same way.
	JobTimeout time.Duration
	// ProgressInterval is the least time between two progress updates; the
	// first is posted once a job has run that long.
	ProgressInterval time.Duration
	// RandomizeSeeds gives every seed input a fresh random value on each job,
	// except inputs a manifest param wrote.
	RandomizeSeeds bool
	// AllowServerFiles lets workflows load files that are already on the
	// ComfyUI server; by default every file a LoadImage-style node names
	// must come with the job.
	AllowServerFiles bool
	// ComfyOrgAPIKey is passed to ComfyUI for its API nodes when a job
	// carries none (COMFY_ORG_API_KEY).
	ComfyOrgAPIKey string

	// Limits bound the input images.
	Limits Limits
	// URLs governs inputs given as URLs.
	URLs URLPolicy
	// S3 is the endpoint's bucket for outputs (worker-comfyui's BUCKET_*
	// variables); nil returns outputs inline unless a job sends s3Config.
	S3 *S3Config
	// MaxResultBytes is the largest job result (MaxResultBytesDefault);
	// inline outputs that would exceed it fail the job with a message that
	// says to configure S3.
	MaxResultBytes int64

	// Logger receives the worker's logs; nil discards them. Jobs log
	// through their serverless.Job's logger when it has one.
	Logger *slog.Logger
	// Clock drives polling, readiness and progress throttling.
	Clock clockwork.Clock
	// Rand makes per-job file tags, random params and seeds (a source
	// seeded from the operating system when nil).
	Rand rand.Source
}

// Limits bound a job's input files. Zero fields take the defaults.
type Limits struct {
	// MaxImages bounds the number of input files of a job: images, files
	// and file params.
	MaxImages int
	// MaxImageBytes bounds one image, decoded; MaxVideoBytes one video or
	// audio file (ComfyUI's --max-upload-size is the ceiling, since every
	// file is uploaded to it); MaxInputBytes all of a job's files.
	MaxImageBytes int64
	MaxVideoBytes int64
	MaxInputBytes int64
	// MaxImageSide and MaxImagePixels bound an image's size, read from its
	// header before anything is decoded (decompression bombs are refused).
	MaxImageSide   int
	MaxImagePixels int64
	// DecodeImages decodes every input image fully before the job runs.
	// By default the worker checks each file's structure (PNG chunks and
	// checksums, JPEG markers, container sizes) and header, which catches
	// truncated and corrupt uploads in a fraction of the time.
	DecodeImages bool
}

// URLPolicy governs inputs given as URLs. Every fetch is checked against
// the address actually dialed, for the first request and each redirect, so
// a name that resolves (or re-resolves) to an internal address is refused.
type URLPolicy struct {
	// Disabled refuses URL inputs altogether.
	Disabled bool
	// AllowHTTP accepts http:// URLs (only https:// by default).
	AllowHTTP bool
	// AllowPrivate accepts loopback, private, link-local, shared (CGNAT)
	// and other non-public addresses.
	AllowPrivate bool
	// Allow lists exceptions to the address check: IP prefixes
	// ("10.1.0.0/16", "192.168.1.7") or exact IP:port pairs
	// ("127.0.0.1:9000").
	Allow []string
	// MaxBytes bounds one download of an image, or of a file that is
	// neither a video nor audio (Limits.MaxImageBytes when zero).
	MaxBytes int64
	// MaxVideoBytes bounds one download of a video or audio file, known by
	// its first bytes (Limits.MaxVideoBytes when zero).
	MaxVideoBytes int64
	// Timeout bounds one fetch (URLTimeoutDefault).
	Timeout time.Duration
	// MaxRedirects bounds the redirects followed (URLMaxRedirectsDefault);
	// negative refuses every redirect.
	MaxRedirects int
}

// S3Config is a bucket outputs are uploaded to, as worker-comfyui's
// BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY
// describe it.
type S3Config struct {
	// EndpointURL is the S3 endpoint. The bucket may be part of it, as
	// worker-comfyui documents: virtual-host style
	// (https://<bucket>.s3.<region>.amazonaws.com) or path style
	// (https://minio.example.com/<bucket>).
	EndpointURL string
	// AccessKeyID and SecretAccessKey are the credentials; the secret is
	// kept out of logs and errors.
	AccessKeyID     string
	SecretAccessKey string
	// Bucket is the bucket name, when the endpoint URL does not hold it.
	Bucket string
	// Region is signed for (taken from an AWS endpoint, else
	// S3RegionDefault).
	Region string
	// Prefix goes before every object key: <prefix>/<job id>/<file>.
	Prefix string
	// PublicURL, when set, makes results carry PublicURL/<key> instead of
	// presigned URLs (a public bucket or a CDN in front of it).
	PublicURL string
	// URLExpiry is the lifetime of presigned URLs (S3URLExpiryDefault, at
	// most 7 days).
	URLExpiry time.Duration
}

// String describes the bucket without the secret.
func (c S3Config) String() string {
	return fmt.Sprintf("s3 endpoint %s bucket %q prefix %q", redactURL(c.EndpointURL), c.Bucket, c.Prefix)
}

// LogValue keeps the secret out of logs.
func (c S3Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// WithDefaults returns a copy of c with every unset field given its default.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.ComfyURL == "" {
		out.ComfyURL = ComfyURLDefault
	}
	if out.HTTPClient == nil {
		out.HTTPClient = &http.Client{}
	}
	if out.Workflow == "" && out.Manifest != nil {
		out.Workflow = out.Manifest.DefaultWorkflow()
	}
	if out.ReadyInterval <= 0 {
		out.ReadyInterval = ReadyIntervalDefault
	}
	if out.ReadyAttempts <= 0 {
		out.ReadyAttempts = ReadyAttemptsDefault
	}
	switch {
	case out.ReconnectAttempts == 0:
		out.ReconnectAttempts = ReconnectAttemptsDefault
	case out.ReconnectAttempts < 0:
		out.ReconnectAttempts = 0
	}
	if out.ReconnectDelay <= 0 {
		out.ReconnectDelay = ReconnectDelayDefault
	}
	if out.ProgressInterval <= 0 {
		out.ProgressInterval = ProgressIntervalDefault
	}
	l := &out.Limits
	if l.MaxImages <= 0 {
		l.MaxImages = MaxImagesDefault
	}
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = MaxImageBytesDefault
	}
	if l.MaxVideoBytes <= 0 {
		l.MaxVideoBytes = MaxVideoBytesDefault
	}
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = MaxInputBytesDefault
	}
	if l.MaxImageSide <= 0 {
		l.MaxImageSide = MaxImageSideDefault
	}
	if l.MaxImagePixels <= 0 {
		l.MaxImagePixels = MaxImagePixelsDefault
	}
	u := &out.URLs
	if u.MaxBytes <= 0 {
		u.MaxBytes = l.MaxImageBytes
	}
	if u.MaxVideoBytes <= 0 {
		u.MaxVideoBytes = l.MaxVideoBytes
	}
	if u.Timeout <= 0 {
		u.Timeout = URLTimeoutDefault
	}
	if u.MaxRedirects == 0 {
		u.MaxRedirects = URLMaxRedirectsDefault
	}
	if out.S3 != nil {
		s := *out.S3
		if s.URLExpiry <= 0 {
			s.URLExpiry = S3URLExpiryDefault
		}
		out.S3 = &s
	}
	if out.MaxResultBytes <= 0 {
		out.MaxResultBytes = MaxResultBytesDefault
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Clock == nil {
		out.Clock = clockwork.NewRealClock()
	}
	if out.Rand == nil {
		out.Rand = rand.NewChaCha8(seed())
	}
	return &out
}

// validate checks a defaulted config.
func (c *Config) validate() error {
	var errs []string
	if u, err := url.Parse(c.ComfyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Sprintf("ComfyURL %q: want an http(s) URL such as %s", redactURL(c.ComfyURL), ComfyURLDefault))
	}
	if c.Manifest == nil && (len(c.Workflows) > 0 || c.Workflow != "") {
		errs = append(errs, "Workflows and Workflow need a Manifest")
	}
	if c.Manifest != nil {
		for _, name := range c.Manifest.Workflows() {
			if c.Workflows[name] == nil {
				errs = append(errs, fmt.Sprintf("the manifest's workflow %q is not in Workflows (load them with Manifest.LoadWorkflows)", name))
			}
		}
		if _, ok := c.Workflows[c.Workflow]; !ok {
			errs = append(errs, fmt.Sprintf("Workflow %q is not one of the manifest's workflows (%s)", c.Workflow, strings.Join(c.Manifest.Workflows(), ", ")))
		}
	}
	for _, a := range c.URLs.Allow {
		if _, err := parseAllow(a); err != nil {
			errs = append(errs, fmt.Sprintf("URLs.Allow %q: %v", a, err))
		}
	}
	if c.S3 != nil {
		if _, err := resolveS3(c.S3); err != nil {
			errs = append(errs, "S3: "+err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New("worker: bad config: " + strings.Join(errs, "; "))
	}
	return nil
}

// parseAllow reads one URLPolicy.Allow entry.
func parseAllow(s string) (allowEntry, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return allowEntry{addrPort: ap.Addr().Unmap().String() + ":" + fmt.Sprint(ap.Port()), isPort: true}, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return allowEntry{prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return allowEntry{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	return allowEntry{}, errors.New("want an IP prefix (10.0.0.0/8), an IP, or an IP:port")
}

// allowEntry is a parsed URLPolicy.Allow entry.
type allowEntry struct {
	prefix   netip.Prefix
	addrPort string
	isPort   bool
}
