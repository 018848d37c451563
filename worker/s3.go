package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/comfypod/comfypod/internal/truncate"
	"github.com/comfypod/comfypod/serverless"
)

// s3Target is an S3Config resolved into what the SDK needs.
type s3Target struct {
	endpoint   string // host[:port]
	secure     bool
	bucket     string
	region     string
	prefix     string
	id, secret string
	public     string
	expiry     time.Duration
}

// awsHost matches AWS S3 endpoints, with the bucket in the name
// (virtual-host style) or not: bucket.s3.us-west-2.amazonaws.com,
// bucket.s3-us-west-2.amazonaws.com, s3.amazonaws.com.
var awsHost = regexp.MustCompile(`^(?:(.+)\.)?s3(?:[.-](?:dualstack\.)?([a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?$`)

// spacesHost matches DigitalOcean Spaces: bucket.nyc3.digitaloceanspaces.com.
var spacesHost = regexp.MustCompile(`^(?:(.+)\.)?([a-z0-9-]+)\.digitaloceanspaces\.com$`)

// bucketName is S3's rule for bucket names.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// resolveS3 checks c and works out endpoint, bucket and region.
func resolveS3(c *S3Config) (*s3Target, error) {
	t := &s3Target{id: c.AccessKeyID, secret: c.SecretAccessKey, bucket: c.Bucket, region: c.Region, expiry: c.URLExpiry}
	if t.expiry <= 0 {
		t.expiry = S3URLExpiryDefault
	}
	if t.expiry > S3URLExpiryDefault {
		return nil, fmt.Errorf("URL expiry %s is longer than the 7 days S3 signatures allow", t.expiry)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return nil, errors.New("the access key id and the secret access key are both needed")
	}
	u, err := url.Parse(strings.TrimSpace(c.EndpointURL))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("endpoint URL %q: want an http(s) URL such as https://s3.us-east-1.amazonaws.com", redactURL(c.EndpointURL))
	}
	if u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("endpoint URL %q must not carry credentials or a query", redactURL(c.EndpointURL))
	}
	t.secure = u.Scheme == "https"
	host := strings.ToLower(u.Hostname())
	t.endpoint = u.Host
	segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	switch m := awsHost.FindStringSubmatch(host); {
	case m != nil:
		if m[1] != "" {
			if t.bucket == "" {
				t.bucket = m[1]
			}
			t.endpoint = strings.TrimPrefix(u.Host, m[1]+".")
		}
		if t.region == "" && m[2] != "" && m[2] != "external-1" {
			t.region = m[2]
		}
	default:
		if m := spacesHost.FindStringSubmatch(host); m != nil {
			if m[1] != "" {
				if t.bucket == "" {
					t.bucket = m[1]
				}
				t.endpoint = strings.TrimPrefix(u.Host, m[1]+".")
			}
			if t.region == "" {
				t.region = m[2]
			}
		}
	}
	if len(segs) > 0 {
		// Path style: the first segment is the bucket, the rest a prefix.
		if t.bucket == "" {
			t.bucket = segs[0]
		} else if segs[0] != t.bucket {
			return nil, fmt.Errorf("endpoint URL %q names bucket %q but the bucket is %q; give one or the other", redactURL(c.EndpointURL), segs[0], t.bucket)
		}
		segs = segs[1:]
	}
	if t.bucket == "" {
		return nil, fmt.Errorf("cannot tell the bucket from the endpoint URL %q: put it in the URL (https://<bucket>.s3.<region>.amazonaws.com, or https://host/<bucket>) or give the bucket name", redactURL(c.EndpointURL))
	}
	if !bucketName.MatchString(t.bucket) || strings.Contains(t.bucket, "..") {
		return nil, fmt.Errorf("bucket name %q is not valid: 3 to 63 lower-case letters, digits, '.' and '-'", truncate.Bytes(t.bucket, 70))
	}
	if t.region == "" {
		t.region = S3RegionDefault
	}
	t.prefix = strings.Trim(path.Join(append(segs, c.Prefix)...), "/")
	if strings.Contains("/"+t.prefix+"/", "/../") {
		return nil, fmt.Errorf("prefix %q must not hold ..", c.Prefix)
	}
	if c.PublicURL != "" {
		pu, err := url.Parse(c.PublicURL)
		if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
			return nil, fmt.Errorf("public URL %q: want an http(s) URL", redactURL(c.PublicURL))
		}
		t.public = strings.TrimRight(c.PublicURL, "/")
	}
	return t, nil
}

// fromJob turns a job's s3Config into an S3Config.
func fromJob(sc *serverless.S3Config) *S3Config {
	return &S3Config{
		EndpointURL: sc.EndpointURL, AccessKeyID: sc.AccessID, SecretAccessKey: sc.AccessSecret,
		Bucket: sc.BucketName, Prefix: sc.ObjectPath,
	}
}

// uploader puts a job's outputs into a bucket.
type uploader struct {
	t      *s3Target
	client *minio.Client
	jobDir string
}

func newUploader(t *s3Target, transport http.RoundTripper, jobID string) (*uploader, error) {
	cl, err := minio.New(t.endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(t.id, t.secret, ""),
		Secure:     t.secure,
		Region:     t.region,
		Transport:  transport,
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %v", t.endpoint, err)
	}
	return &uploader{t: t, client: cl, jobDir: safeKeyPart(jobID)}, nil
}

// key is the object key of an output file.
func (u *uploader) key(filename string) string {
	return strings.TrimPrefix(path.Join(u.t.prefix, u.jobDir, safeKeyPart(filename)), "/")
}

// put streams r (size bytes, -1 when unknown) to the bucket and returns the
// URL the client fetches it from.
func (u *uploader) put(ctx context.Context, filename string, r io.Reader, size int64, contentType string) (string, error) {
	key := u.key(filename)
	opts := minio.PutObjectOptions{ContentType: contentType}
	if size < 0 {
		opts.PartSize = 5 << 20 // bound the memory of an upload of unknown size
	}
	if _, err := u.client.PutObject(ctx, u.t.bucket, key, r, size, opts); err != nil {
		return "", describeS3Error(err, u.t.bucket, key)
	}
	if u.t.public != "" {
		return u.t.public + "/" + escapeKey(key), nil
	}
	p, err := u.client.PresignedGetObject(ctx, u.t.bucket, key, u.t.expiry, nil)
	if err != nil {
		return "", fmt.Errorf("cannot presign the URL of s3://%s/%s: %v", u.t.bucket, key, err)
	}
	return p.String(), nil
}

// describeS3Error explains an SDK error without request details.
func describeS3Error(err error, bucket, key string) error {
	var blocked *blockedError
	if errors.As(err, &blocked) {
		return fmt.Errorf("uploading s3://%s/%s refused: the endpoint is at %s, %s address; the worker connects only to public hosts for an s3Config a job gives", bucket, key, blocked.addr, blocked.reason)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code != "" {
		msg := er.Message
		switch er.Code {
		case "NoSuchBucket":
			msg = fmt.Sprintf("the bucket %q does not exist", bucket)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			msg += " (check the access key id and secret)"
		}
		return fmt.Errorf("uploading s3://%s/%s failed: %s: %s", bucket, key, er.Code, msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("uploading s3://%s/%s failed: %v", bucket, key, err)
}

// safeKeyPart keeps the characters that need no escaping in a key.
func safeKeyPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	out := strings.TrimLeft(string(b), ".")
	if out == "" {
		return "_"
	}
	return out
}

// escapeKey escapes a key for a URL path, keeping its slashes.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
