// Package s3 is a blob.Store in an S3 bucket (AWS S3, MinIO, R2, or any
// S3-compatible server), through the MinIO SDK. Keys live under an optional
// prefix; uploads stream in parts, so memory use does not grow with file size.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/comfypod/comfypod/gateway/blob"
)

// Defaults of Config.
const (
	// EndpointDefault is AWS S3.
	EndpointDefault = "https://s3.amazonaws.com"
	// PartSizeDefault is the size of one part of a streamed upload: S3's
	// minimum, so an upload holds at most this much in memory.
	PartSizeDefault = 5 << 20
)

// Config says which bucket to use and how to reach it.
type Config struct {
	// Endpoint is the server's URL, e.g. https://s3.eu-west-1.amazonaws.com
	// or http://127.0.0.1:9000 (EndpointDefault when empty).
	Endpoint string
	// Region is the bucket's region, when the server needs it.
	Region string
	// Bucket is the bucket's name (required).
	Bucket string
	// Prefix is put before every key ("comfypod/outputs"); no slashes at the
	// ends needed.
	Prefix string
	// AccessKeyID is the credentials' key id; anonymous access when it,
	// SecretAccessKey and SessionToken are all empty.
	AccessKeyID string
	// SecretAccessKey is the secret (never shown by String or LogValue).
	SecretAccessKey string
	// SessionToken is the session token of temporary credentials.
	SessionToken string
	// PathStyle addresses the bucket in the path rather than the host name,
	// as MinIO and most self-hosted servers want.
	PathStyle bool
	// Transport carries the requests (a default transport when nil).
	Transport http.RoundTripper
	// PartSize is the part size of streamed uploads (PartSizeDefault when 0).
	PartSize uint64
}

// String describes the config without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("s3://%s/%s (endpoint %s)", c.Bucket, c.Prefix, c.endpoint())
}

// LogValue keeps the secrets out of slog output.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("bucket", c.Bucket), slog.String("prefix", c.Prefix), slog.String("endpoint", c.endpoint()))
}

func (c Config) endpoint() string {
	if c.Endpoint == "" {
		return EndpointDefault
	}
	return c.Endpoint
}

// ParseURL reads s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true]
// into a Config without credentials. Credentials never go in the URL.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return Config{}, fmt.Errorf("s3: %q: want s3://BUCKET[/PREFIX]", raw)
	}
	if u.User != nil {
		return Config{}, errors.New("s3: put credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), not in the URL")
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	c.Endpoint, c.Region = q.Get("endpoint"), q.Get("region")
	switch v := q.Get("path_style"); v {
	case "", "false", "0":
	case "true", "1":
		c.PathStyle = true
	default:
		return Config{}, fmt.Errorf("s3: path_style=%q: want true or false", v)
	}
	for k := range q {
		if k != "endpoint" && k != "region" && k != "path_style" {
			return Config{}, fmt.Errorf("s3: unknown URL option %q (known: endpoint, region, path_style)", k)
		}
	}
	return c, nil
}

// Store is a blob.Store in an S3 bucket.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	part   uint64
}

var _ blob.Store = (*Store)(nil)

// New returns a store for the bucket cfg names. It does not contact the
// server; Check does.
func New(cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	u, err := url.Parse(cfg.endpoint())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3: endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	opts := &minio.Options{
		Secure:    u.Scheme == "https",
		Region:    cfg.Region,
		Transport: cfg.Transport,
	}
	if cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" || cfg.SessionToken != "" {
		opts.Creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	} else {
		opts.Creds = credentials.New(&credentials.Static{})
	}
	if cfg.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	mc, err := minio.New(u.Host, opts)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	part := cfg.PartSize
	if part == 0 {
		part = PartSizeDefault
	}
	return &Store{c: mc, bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/"), part: part}, nil
}

func (s *Store) object(key string) (string, error) {
	if err := blob.CheckKey(key); err != nil {
		return "", err
	}
	if s.prefix == "" {
		return key, nil
	}
	return path.Join(s.prefix, key), nil
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, err
	}
	// A file that fits in one part goes up in one PUT of known length (some
	// servers refuse a chunked PUT); a larger one streams in parts.
	head, err := io.ReadAll(io.LimitReader(r, int64(s.part)+1))
	if err != nil {
		return 0, fmt.Errorf("s3: writing %s: %w", key, err)
	}
	size, body := int64(len(head)), io.Reader(bytes.NewReader(head))
	if size > int64(s.part) {
		size, body = -1, io.MultiReader(body, r)
	}
	info, err := s.c.PutObject(ctx, s.bucket, name, body, size, s.putOptions(contentType))
	if err != nil {
		return 0, fmt.Errorf("s3: writing %s: %w", key, describe(err))
	}
	return info.Size, nil
}

// Open implements blob.Store.
func (s *Store) Open(ctx context.Context, key string) (*blob.Object, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3: reading %s: %w", key, describe(err))
	}
	st, err := o.Stat()
	if err != nil {
		_ = o.Close()
		if notFound(err) {
			return nil, fmt.Errorf("%s: %w", key, blob.ErrNotFound)
		}
		return nil, fmt.Errorf("s3: reading %s: %w", key, describe(err))
	}
	return &blob.Object{ReadSeekCloser: o, Size: st.Size, ModTime: st.LastModified, ContentType: st.ContentType}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("s3: deleting %s: %w", key, describe(err))
	}
	return nil
}

// Check implements blob.Store: the bucket exists and answers.
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3: checking bucket %s: %w", s.bucket, describe(err))
	}
	if !ok {
		return fmt.Errorf("s3: bucket %s does not exist", s.bucket)
	}
	return nil
}

func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

// describe keeps S3's code and message, which name no secret.
func describe(err error) error {
	r := minio.ToErrorResponse(err)
	if r.Code == "" {
		return err
	}
	return fmt.Errorf("%s: %s", r.Code, r.Message)
}

// putOptions streams the upload in parts with an unsigned payload: over TLS
// the transport protects it, every S3-compatible server accepts it, and the
// chunk-signed form is not understood by some of them.
func (s *Store) putOptions(contentType string) minio.PutObjectOptions {
	return minio.PutObjectOptions{ContentType: contentType, PartSize: s.part, DisableContentSha256: true}
}
