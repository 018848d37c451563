package s3_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/blob/blobtest"
	"github.com/comfypod/comfypod/gateway/blob/s3"
)

// fakeS3 serves an S3-compatible API on loopback with one bucket.
func fakeS3(t testing.TB, bucket string) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

func newStore(t testing.TB, prefix string) (*s3.Store, s3.Config) {
	t.Helper()
	cfg := s3.Config{Endpoint: fakeS3(t, "outputs"), Region: "us-east-1", Bucket: "outputs", Prefix: prefix,
		AccessKeyID: "AKIDTEST", SecretAccessKey: "s3cr3t-value", PathStyle: true}
	st, err := s3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st, cfg
}

func TestContract(t *testing.T) {
	blobtest.Run(t, func(t testing.TB) blob.Store {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		st, _ := newStore(t, "comfypod/"+hex.EncodeToString(b))
		return st
	})
}

func TestPrefixAndContentType(t *testing.T) {
	t.Parallel()
	st, cfg := newStore(t, "/pre/fix/")
	if _, err := st.Put(context.Background(), "jobs/j1/0-out.png", strings.NewReader("png!"), "image/png"); err != nil {
		t.Fatal(err)
	}
	// The object sits under the prefix: a store without one finds it there.
	cfg.Prefix = ""
	raw, err := s3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o, err := raw.Open(context.Background(), "pre/fix/jobs/j1/0-out.png")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, _ := io.ReadAll(o)
	if string(b) != "png!" || o.ContentType != "image/png" {
		t.Fatalf("object: %q, content type %q", b, o.ContentType)
	}
}

func TestSecretsStayOut(t *testing.T) {
	t.Parallel()
	_, cfg := newStore(t, "p")
	for _, s := range []string{cfg.String(), fmtLog(cfg)} {
		if strings.Contains(s, cfg.SecretAccessKey) || strings.Contains(s, cfg.AccessKeyID) {
			t.Fatalf("a credential shows: %s", s)
		}
	}
	// A wrong secret fails with S3's message, which names no secret.
	cfg.SecretAccessKey = "wrong-secret-value"
	bad, err := s3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Put(context.Background(), "k", strings.NewReader("x"), "")
	if err != nil && strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("the secret is in the error: %v", err)
	}
}

func TestMissingBucket(t *testing.T) {
	t.Parallel()
	st, err := s3.New(s3.Config{Endpoint: fakeS3(t, "other"), Bucket: "outputs", PathStyle: true, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "outputs") {
		t.Fatalf("Check of a missing bucket: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	c, err := s3.ParseURL("s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bucket != "bucket" || c.Prefix != "some/prefix" || c.Endpoint != "http://127.0.0.1:9000" || c.Region != "eu-west-1" || !c.PathStyle {
		t.Fatalf("ParseURL: %+v", c)
	}
	for _, bad := range []string{"s3://", "http://bucket/x", "s3://key:secret@bucket/x", "s3://b?path_style=maybe", "s3://b?acl=public"} {
		if _, err := s3.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q): no error", bad)
		} else if strings.Contains(err.Error(), "secret") && strings.Contains(bad, "secret") && strings.Contains(err.Error(), "key:secret") {
			t.Errorf("ParseURL(%q) quotes the credentials: %v", bad, err)
		}
	}
	if _, err := s3.New(s3.Config{Bucket: "b", Endpoint: "ftp://x"}); err == nil {
		t.Error("New with an ftp endpoint: no error")
	}
	if _, err := s3.New(s3.Config{}); err == nil {
		t.Error("New without a bucket: no error")
	}
}
