package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/blob/disk"
	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/internal/testenv"
	"github.com/comfypod/comfypod/runpod"
)

// fuzzService is a service that is never started: enough to parse and check
// requests, and to take webhooks. RunPod is never called.
func fuzzService(t testing.TB) *Service {
	t.Helper()
	st := openStore(t, hopts{})
	outputs, err := disk.New(filepath.Join(t.TempDir(), "outputs"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := runpod.New("ep", runpod.WithAPIKey("rpa_FUZZ"), runpod.WithBaseURL("http://127.0.0.1:1/v2"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(&Config{Store: st, Outputs: outputs, RunPod: client, Package: testPackage(t), Open: true,
		MaxImageBytes: 1 << 20, MaxRequestBytes: 4 << 20, MaxPixels: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// submitOnce parses and checks one POST /v1/jobs body the way handleCreate
// does, without storing anything, and returns the refusal if any.
func submitOnce(s *Service, contentType string, body []byte) *apiError {
	req := httptest.NewRequest("POST", "/v1/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	sub, aerr := s.readSubmission(httptest.NewRecorder(), req)
	if aerr != nil {
		return aerr
	}
	_, aerr = s.prepare(newJobID(), sub, rand.New(rand.NewPCG(1, 2)))
	return aerr
}

// checkRefusal fails on answers that blame the service for bad input.
func checkRefusal(t *testing.T, e *apiError) {
	if e == nil {
		return
	}
	switch e.status {
	case 400, 413, 415, 422:
	default:
		t.Fatalf("bad input answered %d: %v", e.status, e)
	}
	if e.msg == "" || e.code == "" {
		t.Fatalf("refusal without a message: %+v", e)
	}
}

func FuzzSubmitMultipart(f *testing.F) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.SetBoundary("fuzzboundary")
	fw, _ := mw.CreateFormFile("target", "t.png")
	_, _ = fw.Write(pngBytes(f, targetImage(16, 12)))
	fw, _ = mw.CreateFormFile("reference", "r.png")
	_, _ = fw.Write(pngBytes(f, referenceImage(9, 9)))
	fw, _ = mw.CreateFormFile("mask", "m.png")
	_, _ = fw.Write(pngBytes(f, maskImage(16, 12, image.Rect(2, 2, 6, 6))))
	_ = mw.WriteField("prompt", "oil")
	_ = mw.WriteField("seed", "random")
	_ = mw.WriteField("strength", "0.5")
	_ = mw.Close()
	f.Add(b.Bytes())
	f.Add([]byte("--fuzzboundary\r\nContent-Disposition: form-data; name=\"seed\"\r\n\r\n12\r\n--fuzzboundary--\r\n"))
	f.Add([]byte("--fuzzboundary\r\nContent-Disposition: form-data; name=\"target\"; filename=\"x\"\r\n\r\nGIF89a\r\n--fuzzboundary--\r\n"))
	f.Add([]byte("--fuzzboundary--"))
	// A phone photo stored sideways (EXIF orientation 6) and its upright mask.
	photo, err := os.ReadFile(filepath.Join(testenv.Conformance(f), "cases", "load_jpeg_webp", "inputs", "photo_exif6_120x90.jpg"))
	if err != nil {
		f.Fatal(err)
	}
	b.Reset()
	mw = multipart.NewWriter(&b)
	_ = mw.SetBoundary("fuzzboundary")
	for name, data := range map[string][]byte{"target": photo, "reference": photo, "mask": pngBytes(f, maskImage(90, 120, image.Rect(2, 2, 6, 6)))} {
		fw, _ = mw.CreateFormFile(name, name)
		_, _ = fw.Write(data)
	}
	_ = mw.Close()
	f.Add(b.Bytes())
	s := fuzzService(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRefusal(t, submitOnce(s, "multipart/form-data; boundary=fuzzboundary", body))
	})
}

func FuzzSubmitJSON(f *testing.F) {
	img := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	good, _ := json.Marshal(map[string]any{
		"target":    "data:image/png;base64," + img(pngBytes(f, targetImage(16, 12))),
		"reference": img(pngBytes(f, referenceImage(9, 9))),
		"mask":      img(pngBytes(f, maskImage(16, 12, image.Rect(2, 2, 6, 6)))),
		"seed":      "random", "strength": 0.25, "prompt": "x",
	})
	f.Add(good)
	f.Add([]byte(`{"seed": 18446744073709551616}`))
	f.Add([]byte(`{"target": "data:image/png;base64,AAAA", "mask": null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"strength": "1e999"}`))
	s := fuzzService(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRefusal(t, submitOnce(s, "application/json", body))
	})
}

// FuzzWebhook posts arbitrary bodies to the webhook of a job in flight: the
// answer is 200, 400 or 404, never a crash, and the job ends only with a
// terminal status.
func FuzzWebhook(f *testing.F) {
	f.Add([]byte(`{"id":"rp-1","status":"COMPLETED","output":{"images":[{"filename":"a.png","type":"base64","data":"iVBORw0KGgo="}]}}`))
	f.Add([]byte(`{"id":"rp-1","status":"FAILED","error":"{\"error_type\":\"ValueError\",\"error_message\":\"bad\"}"}`))
	f.Add([]byte(`{"id":"rp-1","status":"IN_PROGRESS","output":{"percent":40}}`))
	f.Add([]byte(`{"id":"other","status":"COMPLETED","output":"aGVsbG8="}`))
	f.Add([]byte(`{"status":"COMPLETED","output":null}`))
	f.Add([]byte(`not json`))
	s := fuzzService(f)
	ctx := context.Background()
	t0 := time.Now()
	f.Fuzz(func(t *testing.T, body []byte) {
		id := newJobID()
		j := &store.Job{ID: id, Endpoint: s.rp.EndpointID(), CreatedAt: t0, Deadline: t0.Add(time.Hour), Params: json.RawMessage(`{}`)}
		if err := s.st.CreateJob(ctx, j, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.st.ClaimJobs(ctx, store.ClaimParams{Endpoint: j.Endpoint, Replica: "r", Now: time.Now(), LeaseUntil: t0.Add(time.Hour), Limit: 1 << 30, Max: 1}); err != nil {
			t.Fatal(err)
		}
		secret := "fuzzsecret"
		if _, err := s.st.MarkSubmitting(ctx, id, "r", HashKey(secret), t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.st.MarkSubmitted(ctx, id, "rp-1", t0); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/runpod/webhook/"+id+"."+secret, bytes.NewReader(body)))
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("webhook answered %d: %s", rec.Code, rec.Body)
		}
		got, err := s.st.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK && got.State.Terminal() {
			t.Fatalf("a refused webhook ended the job: %+v", got)
		}
		if got.State == store.StateSucceeded && len(got.Outputs) == 0 {
			t.Fatalf("succeeded without outputs: %+v", got)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatal("the answer echoes the secret")
		}
	})
}

func FuzzProgress(f *testing.F) {
	for _, s := range []string{`{"stage":"running","value":3,"max":20,"percent":45}`, `0.5`, `55`, `"loading"`, `{"step":1,"steps":0}`,
		`{"progress":150}`, `{"current":1,"total":3,"message":"x"}`, `[1,2]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := progressOf(raw)
		if p.Fraction != nil && (*p.Fraction < 0 || *p.Fraction > 1) {
			t.Fatalf("fraction %v out of range for %s", *p.Fraction, raw)
		}
		if !bytes.Equal(p.Detail, raw) {
			t.Fatal("detail changed")
		}
	})
}
