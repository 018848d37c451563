package serverless

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDecodeTake(t *testing.T) {
	t.Parallel()
	jobs, errs := decodeTake([]byte(`{"id":"a-u1","input":{"p":1},"webhook":"http://h","batchId":"b1",
		"s3Config":{"accessId":"A","accessSecret":"S","bucketName":"B","endpointUrl":"http://s3","objectPath":"x/"},
		"policy":{"executionTimeout":600000,"lowPriority":true,"ttl":86400000},"delayTime":12,"retries":0}`))
	if len(errs) != 0 || len(jobs) != 1 {
		t.Fatalf("jobs %v errs %v", jobs, errs)
	}
	j := jobs[0]
	if j.ID != "a-u1" || string(j.Input) != `{"p":1}` || j.Webhook != "http://h" || j.BatchID != "b1" {
		t.Errorf("job %+v", j)
	}
	if *j.S3Config != (S3Config{AccessID: "A", AccessSecret: "S", BucketName: "B", EndpointURL: "http://s3", ObjectPath: "x/"}) {
		t.Errorf("s3 %+v", j.S3Config)
	}
	if *j.Policy != (Policy{ExecutionTimeout: 600000, LowPriority: true, TTL: 86400000}) {
		t.Errorf("policy %+v", j.Policy)
	}
	if len(j.Extra) != 2 || string(j.Extra["delayTime"]) != "12" {
		t.Errorf("extra %v", j.Extra)
	}

	jobs, errs = decodeTake([]byte(` [{"id":"a","input":1},{"id":"b"},{"input":2},{"id":7,"input":"n"},{"id":true,"input":1},null,"x",
		{"id":"c","input":null},{"id":"d","input":[],"s3Config":"oops","policy":{"ttl":"1"}}] `))
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	if strings.Join(ids, ",") != "a,7,d" {
		t.Errorf("ids %v", ids)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	want := []string{
		"batch entry 1: job b: job has missing field(s): input",
		"batch entry 2: job has missing field(s): id",
		"batch entry 4: job has a non-string id",
		"batch entry 5: job is null",
		"batch entry 6: job is not a JSON object: json: cannot unmarshal string into Go value of type map[string]json.RawMessage",
		"batch entry 7: job c: job has missing field(s): input",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	var te *takeError
	if !errors.As(errs[0], &te) || te.id != "b" {
		t.Errorf("takeError %v", errs[0])
	}
	// A lenient field of the wrong type stays in Extra rather than failing the job.
	if d := jobs[2]; d.S3Config != nil || d.Policy != nil || string(d.Extra["s3Config"]) != `"oops"` {
		t.Errorf("job d %+v", d)
	}

	for _, body := range []string{``, `  `} {
		if jobs, errs := decodeTake([]byte(body)); jobs != nil || errs != nil {
			t.Errorf("%q: %v %v", body, jobs, errs)
		}
	}
	for _, body := range []string{`<html>`, `[1,`, `{"id":`, `"job"`} {
		if jobs, errs := decodeTake([]byte(body)); len(jobs) != 0 || len(errs) != 1 {
			t.Errorf("%q: %v %v", body, jobs, errs)
		}
	}
}

func TestS3ConfigHidesSecret(t *testing.T) {
	t.Parallel()
	s := S3Config{AccessID: "AKIA", AccessSecret: "very-secret", BucketName: "b"}
	if strings.Contains(fmt.Sprint(s), "very-secret") || strings.Contains(fmt.Sprintf("%v", &s), "very-secret") {
		t.Error("fmt shows the secret")
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", slog.Any("s3", s))
	if strings.Contains(b.String(), "very-secret") || !strings.Contains(b.String(), "AKIA") {
		t.Errorf("log %s", b.String())
	}
	// JSON encoding is untouched: the worker needs the secret to upload.
	if out, _ := json.Marshal(s); !strings.Contains(string(out), "very-secret") {
		t.Errorf("json %s", out)
	}
}

func TestDecodeStop(t *testing.T) {
	t.Parallel()
	ids, err := decodeStop([]byte(`{"jobsToStop":["a",1,null,"",{"x":1},"b"]}`))
	if err != nil || strings.Join(ids, ",") != "a,b" {
		t.Errorf("ids %v err %v", ids, err)
	}
	if ids, err := decodeStop(nil); ids != nil || err != nil {
		t.Errorf("empty: %v %v", ids, err)
	}
	if _, err := decodeStop([]byte(`[1]`)); err == nil {
		t.Error("array accepted")
	}
}

func TestParseTestInput(t *testing.T) {
	t.Parallel()
	j, err := parseTestInput([]byte(`{"input": {"prompt": "cat"}}`))
	if err != nil || j.ID != LocalJobIDDefault || string(j.Input) != `{"prompt":"cat"}` && string(j.Input) != `{"prompt": "cat"}` {
		t.Errorf("job %+v err %v", j, err)
	}
	j, err = parseTestInput([]byte(`{"id": "mine", "input": 5, "webhook": "http://h"}`))
	if err != nil || j.ID != "mine" || string(j.Input) != "5" || j.Webhook != "http://h" {
		t.Errorf("job %+v err %v", j, err)
	}
	for in, want := range map[string]string{
		``:                        "it is empty",
		`[1]`:                     "must be a JSON object",
		`{"input":`:               "not valid JSON",
		`{"prompt": "cat"}`:       `it has no "input"`,
		`{"input": null}`:         `it has no "input"`,
		`{"id": 3.5, "input": 1}`: "",
	} {
		_, err := parseTestInput([]byte(in))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errBadTestInput) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}
