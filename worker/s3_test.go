package worker

import (
	"strings"
	"testing"
	"time"
)

func TestResolveS3(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg                                    S3Config
		endpoint, bucket, region, prefix, want string
	}{
		{cfg: S3Config{EndpointURL: "https://my-bucket.s3.us-west-2.amazonaws.com"}, endpoint: "s3.us-west-2.amazonaws.com", bucket: "my-bucket", region: "us-west-2"},
		{cfg: S3Config{EndpointURL: "https://my-bucket.s3-eu-west-1.amazonaws.com/"}, endpoint: "s3-eu-west-1.amazonaws.com", bucket: "my-bucket", region: "eu-west-1"},
		{cfg: S3Config{EndpointURL: "https://my.dotted.bucket.s3.amazonaws.com"}, endpoint: "s3.amazonaws.com", bucket: "my.dotted.bucket", region: S3RegionDefault},
		{cfg: S3Config{EndpointURL: "https://s3.ap-south-1.amazonaws.com", Bucket: "outs"}, endpoint: "s3.ap-south-1.amazonaws.com", bucket: "outs", region: "ap-south-1"},
		{cfg: S3Config{EndpointURL: "https://space1.nyc3.digitaloceanspaces.com"}, endpoint: "nyc3.digitaloceanspaces.com", bucket: "space1", region: "nyc3"},
		{cfg: S3Config{EndpointURL: "http://127.0.0.1:9000/bucket1/comfy", Prefix: "runs"}, endpoint: "127.0.0.1:9000", bucket: "bucket1", region: S3RegionDefault, prefix: "comfy/runs"},
		{cfg: S3Config{EndpointURL: "https://acc.r2.cloudflarestorage.com", Bucket: "r2b", Region: "auto"}, endpoint: "acc.r2.cloudflarestorage.com", bucket: "r2b", region: "auto"},
		{cfg: S3Config{EndpointURL: "https://acc.r2.cloudflarestorage.com"}, want: "cannot tell the bucket"},
		{cfg: S3Config{EndpointURL: "ftp://x/y"}, want: "want an http(s) URL"},
		{cfg: S3Config{EndpointURL: "https://k:s@x/y"}, want: "must not carry credentials"},
		{cfg: S3Config{EndpointURL: "https://x/Bad_Bucket"}, want: "is not valid"},
		{cfg: S3Config{EndpointURL: "https://x/a", Bucket: "b"}, want: "names bucket \"a\" but the bucket is \"b\""},
		{cfg: S3Config{EndpointURL: "https://x/bucket1", Prefix: "../up"}, want: "must not hold .."},
		{cfg: S3Config{EndpointURL: "https://x/bucket1", URLExpiry: 8 * 24 * time.Hour}, want: "longer than the 7 days"},
		{cfg: S3Config{EndpointURL: "https://x/bucket1", AccessKeyID: "id"}, want: "both needed"},
		{cfg: S3Config{EndpointURL: "https://x/bucket1", PublicURL: "cdn.example.com"}, want: "public URL"},
	} {
		c := tc.cfg
		if c.AccessKeyID == "" && !strings.Contains(tc.want, "both") {
			c.AccessKeyID, c.SecretAccessKey = "id", "secret"
		}
		got, err := resolveS3(&c)
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", c.EndpointURL, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.EndpointURL, err)
			continue
		}
		if got.endpoint != tc.endpoint || got.bucket != tc.bucket || got.region != tc.region || got.prefix != tc.prefix {
			t.Errorf("%s: endpoint %q bucket %q region %q prefix %q", c.EndpointURL, got.endpoint, got.bucket, got.region, got.prefix)
		}
	}
}

func TestS3ConfigHidesSecret(t *testing.T) {
	t.Parallel()
	c := S3Config{EndpointURL: "https://k@host/b?x=1", AccessKeyID: "id", SecretAccessKey: "very-secret"}
	if s := c.String(); strings.Contains(s, "very-secret") || strings.Contains(s, "x=1") || strings.Contains(s, "k@") {
		t.Errorf("String() = %s", s)
	}
	if s := c.LogValue().String(); strings.Contains(s, "very-secret") {
		t.Errorf("LogValue() = %s", s)
	}
}

func TestSafeKeyPart(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"sync-1b2c-e1": "sync-1b2c-e1", "../x y": "_x_y", "..": "_", "a/b": "a_b", "": "_"} {
		if got := safeKeyPart(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
