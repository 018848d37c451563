package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// apiDoc is the parsed /openapi.json.
type apiDoc map[string]any

func loadDoc(t testing.TB, b []byte) apiDoc {
	t.Helper()
	var d apiDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return d
}

// resolve follows a local $ref.
func (d apiDoc) resolve(t testing.TB, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %v", v)
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	if !strings.HasPrefix(ref, "#/") {
		t.Fatalf("non-local $ref %s", ref)
	}
	var cur any = map[string]any(d)
	for _, part := range strings.Split(ref[2:], "/") {
		cm, ok := cur.(map[string]any)
		if !ok || cm[part] == nil {
			t.Fatalf("$ref %s does not resolve", ref)
		}
		cur = cm[part]
	}
	return d.resolve(t, cur)
}

// walkRefs checks that every $ref in the document resolves.
func (d apiDoc) walkRefs(t testing.TB, v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["$ref"]; ok {
			d.resolve(t, x)
			n++
		}
		for _, c := range x {
			n += d.walkRefs(t, c)
		}
	case []any:
		for _, c := range x {
			n += d.walkRefs(t, c)
		}
	}
	return n
}

// validate checks value against schema: the subset of JSON Schema the
// document uses (type, const, enum, required, properties,
// additionalProperties, items, oneOf, minimum, maximum, maxLength, pattern,
// $ref). It returns the problems found.
func (d apiDoc) validate(t testing.TB, schema map[string]any, value any, path string) []string {
	schema = d.resolve(t, schema)
	var out []string
	if one, ok := schema["oneOf"].([]any); ok {
		matches := 0
		for _, alt := range one {
			if len(d.validate(t, alt.(map[string]any), value, path)) == 0 {
				matches++
			}
		}
		if matches != 1 {
			out = append(out, fmt.Sprintf("%s: matches %d of oneOf", path, matches))
		}
		return out
	}
	if c, ok := schema["const"]; ok && fmt.Sprint(c) != fmt.Sprint(value) {
		out = append(out, fmt.Sprintf("%s: %v is not the const %v", path, value, c))
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(value) }) {
		out = append(out, fmt.Sprintf("%s: %v is not one of %v", path, value, enum))
	}
	if types := schemaTypes(schema["type"]); len(types) > 0 && !slices.Contains(types, jsonType(value)) &&
		!(jsonType(value) == "integer" && slices.Contains(types, "number")) {
		return append(out, fmt.Sprintf("%s: %s, want %v", path, jsonType(value), types))
	}
	switch v := value.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range schemaList(schema["required"]) {
			if _, ok := v[r]; !ok {
				out = append(out, fmt.Sprintf("%s: missing required %q", path, r))
			}
		}
		for k, fv := range v {
			if ps, ok := props[k]; ok {
				out = append(out, d.validate(t, ps.(map[string]any), fv, path+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					out = append(out, fmt.Sprintf("%s: unexpected property %q", path, k))
				}
			case map[string]any:
				out = append(out, d.validate(t, ap, fv, path+"."+k)...)
			case nil:
				if props != nil {
					// Undocumented fields are a documentation bug here.
					out = append(out, fmt.Sprintf("%s: property %q is not documented", path, k))
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, it := range v {
				out = append(out, d.validate(t, items, it, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case json.Number:
		f, _ := v.Float64()
		if m, ok := schema["minimum"].(json.Number); ok {
			if mf, _ := m.Float64(); f < mf {
				out = append(out, fmt.Sprintf("%s: %v below the minimum %v", path, v, m))
			}
		}
		if m, ok := schema["maximum"].(json.Number); ok {
			if mf, _ := m.Float64(); f > mf {
				out = append(out, fmt.Sprintf("%s: %v above the maximum %v", path, v, m))
			}
		}
	case string:
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			out = append(out, fmt.Sprintf("%s: %q does not match %s", path, v, p))
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				out = append(out, fmt.Sprintf("%s: %q is not a date-time", path, v))
			}
		}
	}
	return out
}

func schemaTypes(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, e.(string))
		}
		return out
	}
	return nil
}

func schemaList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		out = append(out, e.(string))
	}
	return out
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if f, err := x.Float64(); err == nil && f == math.Trunc(f) && !strings.ContainsAny(x.String(), ".eE") {
			return "integer"
		}
		return "number"
	}
	return "unknown"
}

// routeKey turns a ServeMux pattern into the document's method and path.
func routeKey(pattern string) (string, string) {
	method, path, _ := strings.Cut(pattern, " ")
	return strings.ToLower(method), path
}

// TestOpenAPI checks /openapi.json against the service: it is OpenAPI 3.1
// with every reference resolving, it documents exactly the routes the
// service serves, and real answers of those routes match their schemas.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{webhooks: true})
	key, _ := newKeyIn(t, h, "docs")
	code, b, hdr := h.doHeader("GET", "/openapi.json", "", "", nil, nil)
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %v", code, hdr)
	}
	d := loadDoc(t, b)
	if d["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", d["openapi"])
	}
	if info, _ := d["info"].(map[string]any); info["title"] == nil || info["version"] == nil {
		t.Fatal("info needs a title and a version")
	}
	if n := d.walkRefs(t, map[string]any(d)); n < 20 {
		t.Fatalf("only %d $refs", n)
	}

	// The documented routes are the served ones, no more, no less.
	paths := d["paths"].(map[string]any)
	var documented, served []string
	for p, item := range paths {
		for m, op := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			documented = append(documented, m+" "+p)
			opm := op.(map[string]any)
			if opm["operationId"] == nil || opm["responses"] == nil {
				t.Errorf("%s %s: needs operationId and responses", m, p)
			}
			for _, r := range opm["responses"].(map[string]any) {
				d.resolve(t, r)
			}
			// Path parameters are declared.
			for _, name := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(p, -1) {
				if !declaresParam(t, d, item.(map[string]any), opm, name[1]) {
					t.Errorf("%s %s: path parameter %s is not declared", m, p, name[1])
				}
			}
		}
	}
	for _, rt := range h.svc.apiRoutes() {
		m, p := routeKey(rt.pattern)
		served = append(served, m+" "+p)
		// Routes that need a key say so; the others opt out.
		op := paths[p].(map[string]any)[m].(map[string]any)
		sec, has := op["security"]
		if open := has && len(sec.([]any)) == 0; open == rt.auth {
			t.Errorf("%s: security in the document does not match the service (auth %v)", rt.pattern, rt.auth)
		}
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented routes\n %v\nserved routes\n %v", documented, served)
	}

	// Real answers match the schemas.
	schemaOf := func(path, method string, code int) map[string]any {
		t.Helper()
		op := paths[path].(map[string]any)[method].(map[string]any)
		resp, ok := op["responses"].(map[string]any)[fmt.Sprint(code)]
		if !ok {
			t.Fatalf("%s %s: status %d is not documented", method, path, code)
		}
		r := d.resolve(t, resp)
		content, _ := r["content"].(map[string]any)
		media, ok := content["application/json"].(map[string]any)
		if !ok {
			return nil
		}
		return media["schema"].(map[string]any)
	}
	check := func(path, method string, code int, body []byte) {
		t.Helper()
		schema := schemaOf(path, method, code)
		if schema == nil {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s %s %d: not JSON: %s", method, path, code, body)
		}
		if probs := d.validate(t, schema, v, "$"); len(probs) > 0 {
			t.Fatalf("%s %s %d does not match its schema:\n  %s\n%s", method, path, code, strings.Join(probs, "\n  "), body)
		}
	}
	f := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24))
	ct, body := f.body(t)
	code, b = h.do("POST", "/v1/jobs", key, ct, body)
	check("/v1/jobs", "post", code, b)
	var acc Accepted
	_ = json.Unmarshal(b, &acc)
	j := h.wait(key, acc.ID)
	code, b = h.do("GET", "/v1/jobs/"+acc.ID, key, "", nil)
	check("/v1/jobs/{id}", "get", code, b)
	code, b = h.do("GET", "/v1/jobs?limit=1", key, "", nil)
	check("/v1/jobs", "get", code, b)
	code, b = h.do("DELETE", "/v1/jobs/"+acc.ID, key, "", nil)
	check("/v1/jobs/{id}", "delete", code, b)
	code, _ = h.do("GET", j.Outputs[0].URL, key, "", nil)
	schemaOf("/v1/jobs/{id}/outputs/{n}", "get", code)
	code, _ = h.do("GET", j.Outputs[0].URL+"/thumbnail", key, "", nil)
	schemaOf("/v1/jobs/{id}/outputs/{n}/thumbnail", "get", code)
	if len(j.Inputs) != 3 {
		t.Fatalf("inputs %+v", j.Inputs)
	}
	code, _ = h.do("GET", j.Inputs[0].URL, key, "", nil)
	schemaOf("/v1/jobs/{id}/inputs/{name}", "get", code)
	code, b = h.do("GET", "/v1/jobs/"+acc.ID+"/inputs/style", key, "", nil)
	check("/v1/jobs/{id}/inputs/{name}", "get", code, b)
	// A retried submission (Idempotency-Key) and a key reused for another.
	idem := http.Header{"Idempotency-Key": {"docs-1"}}
	for range 2 {
		code, b, _ = h.doHeader("POST", "/v1/jobs", key, ct, body, idem)
		check("/v1/jobs", "post", code, b)
	}
	if code != http.StatusOK {
		t.Fatalf("a retried submission: %d", code)
	}
	other := brushForm(t, 64, 48, image.Rect(0, 0, 4, 4))
	oct, obody := other.body(t)
	code, b, _ = h.doHeader("POST", "/v1/jobs", key, oct, obody, idem)
	check("/v1/jobs", "post", code, b)
	code, b = h.do("GET", "/v1/package", "", "", nil)
	check("/v1/package", "get", code, b)
	for _, p := range []string{"/healthz", "/readyz"} {
		code, b = h.do("GET", p, "", "", nil)
		check(p, "get", code, b)
	}
	code, _ = h.do("GET", "/metrics", "", "", nil)
	schemaOf("/metrics", "get", code)

	// Error answers match the error schema.
	code, b = h.do("GET", "/v1/jobs/"+acc.ID, "", "", nil)
	check("/v1/jobs/{id}", "get", code, b)
	code, b = h.do("GET", "/v1/jobs/zzzzzzzzzzzzzzzzzzzzzzzz", key, "", nil)
	check("/v1/jobs/{id}", "get", code, b)
	code, b = h.do("GET", "/v1/jobs?limit=0", key, "", nil)
	check("/v1/jobs", "get", code, b)
	code, b = h.do("POST", "/v1/jobs", key, "application/json", []byte(`{"strength": 99}`))
	check("/v1/jobs", "post", code, b)
	code, b = h.do("POST", "/v1/jobs", key, "text/plain", []byte(`x`))
	check("/v1/jobs", "post", code, b)
	code, b = h.do("POST", "/v1/runpod/webhook/abc", "", "application/json", []byte(`{}`))
	check("/v1/runpod/webhook/{token}", "post", code, b)
	// The event stream is documented as such.
	code, _, hdr = h.doHeader("GET", "/v1/jobs/"+acc.ID+"/events", key, "", nil, nil)
	if ct := hdr.Get("Content-Type"); code != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", code, ct)
	}
	schemaOf("/v1/jobs/{id}/events", "get", code)
}

func declaresParam(t testing.TB, d apiDoc, item, op map[string]any, name string) bool {
	for _, src := range []map[string]any{item, op} {
		ps, _ := src["parameters"].([]any)
		for _, p := range ps {
			pm := d.resolve(t, p)
			if pm["name"] == name && pm["in"] == "path" && pm["required"] == true {
				return true
			}
		}
	}
	return false
}

// TestOpenAPIValidatorCatchesMistakes makes sure the schema check above can
// fail.
func TestOpenAPIValidatorCatchesMistakes(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, openAPI)
	job := d["components"].(map[string]any)["schemas"].(map[string]any)["Job"].(map[string]any)
	for _, bad := range []string{
		`{}`,
		`{"id":"x","status":"done","created_at":"2026-01-01T00:00:00Z","started_at":null,"finished_at":null,"deadline":"2026-01-01T00:00:00Z","progress":null,"error":null,"outputs":[],"params":{}}`,
		`{"id":"x","status":"queued","created_at":"yesterday","started_at":null,"finished_at":null,"deadline":"2026-01-01T00:00:00Z","progress":null,"error":null,"outputs":[],"params":{}}`,
		`{"id":"x","status":"queued","created_at":"2026-01-01T00:00:00Z","started_at":null,"finished_at":null,"deadline":"2026-01-01T00:00:00Z","progress":null,"error":null,"outputs":[{"filename":"a"}],"params":{}}`,
		`{"id":"x","status":"queued","created_at":"2026-01-01T00:00:00Z","started_at":null,"finished_at":null,"deadline":"2026-01-01T00:00:00Z","progress":null,"error":null,"outputs":[],"params":{},"extra":1}`,
	} {
		var v any
		dec := json.NewDecoder(strings.NewReader(bad))
		dec.UseNumber()
		_ = dec.Decode(&v)
		if len(d.validate(t, job, v, "$")) == 0 {
			t.Errorf("accepted %s", bad)
		}
	}
}
