package gateway

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/gateway/blob"
)

// TestInputsKept: a job's images are kept as its workers got them, listed
// with the job and served to their owner only; its output has a thumbnail.
func TestInputsKept(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    hopts
	}{{"disk", hopts{}}, {"s3", hopts{s3: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.o)
			alice, _ := newKeyIn(t, h, "alice")
			bob, _ := newKeyIn(t, h, "bob")
			f := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24))
			f.files["reference"] = jpegBytes(t, referenceImage(40, 30))
			id := h.submit(alice, f)
			j := h.wait(alice, id)
			if j.Status != StatusSucceeded || len(j.Inputs) != 3 {
				t.Fatalf("job %+v", j)
			}
			sent, raw := workerInputOf(t, h)
			for _, in := range j.Inputs {
				code, b, hdr := h.doHeader("GET", in.URL, alice, "", nil, nil)
				if code != http.StatusOK || hdr.Get("Content-Type") != in.ContentType || int64(len(b)) != in.Size ||
					!strings.Contains(hdr.Get("Content-Disposition"), id+"-"+in.Name) {
					t.Fatalf("GET %s: %d %v, %d bytes; listed as %+v", in.URL, code, hdr, len(b), in)
				}
				// The very bytes the worker got.
				if !bytes.Equal(b, raw[in.Name]) {
					t.Fatalf("input %s is not what the worker got", in.Name)
				}
				if code, _ := h.do("GET", in.URL, bob, "", nil); code != http.StatusNotFound {
					t.Fatalf("another key's GET %s: %d, want 404", in.URL, code)
				}
			}
			if j.Inputs[1].Name != "reference" || j.Inputs[1].ContentType != "image/jpeg" || sent["mask"].Bounds().Dx() != 64 {
				t.Fatalf("inputs %+v", j.Inputs)
			}
			for _, name := range []string{"style", "target%2F..%2Fx"} {
				code, b := h.do("GET", "/v1/jobs/"+id+"/inputs/"+name, alice, "", nil)
				if code != http.StatusNotFound || errorOf(t, b).Code != "not_found" {
					t.Fatalf("GET input %s: %d %s", name, code, b)
				}
			}

			// The thumbnail: small, JPEG for an opaque output, made once.
			thumb := j.Outputs[0].URL + "/thumbnail"
			for range 2 {
				code, b, hdr := h.doHeader("GET", thumb, alice, "", nil, nil)
				if code != http.StatusOK || hdr.Get("Content-Type") != "image/jpeg" {
					t.Fatalf("GET %s: %d %v", thumb, code, hdr)
				}
				img, err := jpeg.Decode(bytes.NewReader(b))
				if err != nil || img.Bounds().Size() != image.Pt(64, 48) {
					t.Fatalf("thumbnail: %v, %v", img.Bounds(), err)
				}
			}
			obj, err := h.blobs.Open(t.Context(), thumbKey(id, 0))
			if err != nil {
				t.Fatalf("the thumbnail was not kept: %v", err)
			}
			_ = obj.Close()
			if code, _ := h.do("GET", thumb, bob, "", nil); code != http.StatusNotFound {
				t.Fatalf("another key's thumbnail: %d", code)
			}
			if code, _ := h.do("GET", "/v1/jobs/"+id+"/outputs/1/thumbnail", alice, "", nil); code != http.StatusNotFound {
				t.Fatalf("the thumbnail of an output that does not exist: %d", code)
			}
		})
	}
}

func TestThumbnailScales(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true})
	id := h.submit("", brushForm(t, 900, 300, image.Rect(100, 100, 200, 200)))
	j := h.wait("", id)
	code, b, hdr := h.doHeader("GET", j.Outputs[0].URL+"/thumbnail", "", "", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, b)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Size() != image.Pt(256, 85) {
		t.Fatalf("thumbnail of a 900×300 output: %v %v (%s)", img.Bounds(), err, hdr.Get("Content-Type"))
	}
	// An output that is no image has no thumbnail.
	if err := putBlob(h, j, []byte("not an image")); err != nil {
		t.Fatal(err)
	}
	if err := h.blobs.Delete(t.Context(), thumbKey(id, 0)); err != nil {
		t.Fatal(err)
	}
	code, b = h.do("GET", j.Outputs[0].URL+"/thumbnail", "", "", nil)
	if code != http.StatusNotFound || !strings.Contains(errorOf(t, b).Message, "no thumbnail") {
		t.Fatalf("thumbnail of a file that is no image: %d %s", code, b)
	}
}

// putBlob replaces a job's first output file.
func putBlob(h *harness, j Job, data []byte) error {
	st, err := h.st.GetJob(context.Background(), j.ID)
	if err != nil {
		return err
	}
	_, err = h.blobs.Put(context.Background(), st.Outputs[0].Key, bytes.NewReader(data), "image/png")
	return err
}

// noInputs is an output store that refuses to keep inputs.
type noInputs struct {
	blob.Store
}

func (s noInputs) Put(ctx context.Context, key string, r io.Reader, ct string) (int64, error) {
	if strings.Contains(key, "/inputs/") && strings.HasSuffix(key, ".png") {
		return 0, errors.New("disk full")
	}
	return s.Store.Put(ctx, key, r, ct)
}

// TestInputsNotKept: when the output store cannot keep a job's images, the
// job runs without them (none half-kept) and says so by an empty list.
func TestInputsNotKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, config: func(c *Config) { c.Outputs = noInputs{c.Outputs} }})
	f := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24))
	f.files["reference"] = jpegBytes(t, referenceImage(40, 30))
	id := h.submit("", f)
	j := h.wait("", id)
	if j.Status != StatusSucceeded || len(j.Inputs) != 0 {
		t.Fatalf("job %+v", j)
	}
	// The reference, a JPEG, was written before the others failed: removed.
	if obj, err := h.blobs.Open(t.Context(), inputKey(id, id+"-reference.jpg")); !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			_ = obj.Close()
		}
		t.Fatalf("a half-kept input was left: %v", err)
	}
	code, b := h.do("GET", "/v1/jobs/"+id+"/inputs/target", "", "", nil)
	if code != http.StatusNotFound || !strings.Contains(errorOf(t, b).Message, "was not kept") {
		t.Fatalf("GET a lost input: %d %s", code, b)
	}
	if !strings.Contains(h.logs.String(), "could not be kept") {
		t.Error("the failure is not logged")
	}
}
