package gateway

import (
	"context"
	"encoding/json"
	"image"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// newKeyIn makes a key in the harness's store and returns its secret.
func newKeyIn(t testing.TB, h *harness, name string) (string, *store.Key) {
	t.Helper()
	secret, k, err := NewKey(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return secret, k
}

func TestAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{webhooks: true})
	alice, _ := newKeyIn(t, h, "alice")
	bob, bobKey := newKeyIn(t, h, "bob")

	// No key, a malformed one, an unknown one: 401 with a hint, everywhere.
	for _, key := range []string{"", "cpk_notakeyatallbutlongenough", "rpa_SOMETHINGELSE"} {
		for _, r := range []struct{ method, path string }{
			{"POST", "/v1/jobs"}, {"GET", "/v1/jobs"}, {"GET", "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaa"},
			{"DELETE", "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaa"}, {"GET", "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaa/events"},
		} {
			code, b, hdr := h.doHeader(r.method, r.path, key, "", nil, nil)
			if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s %s with key %q: %d %s", r.method, r.path, key, code, b)
			}
			if e := errorOf(t, b); e.Code != "unauthorized" || !strings.Contains(e.Message, "Authorization: Bearer") && !strings.Contains(e.Message, "revoked") {
				t.Fatalf("401 body: %+v", e)
			}
		}
	}
	// The other scheme word is refused too.
	code, _, _ := h.doHeader("GET", "/v1/jobs", "", "", nil, http.Header{"Authorization": {"Basic " + alice}})
	if code != http.StatusUnauthorized {
		t.Fatalf("Basic auth: %d", code)
	}
	// Health, metrics and the API description need no key.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/v1/package"} {
		if code, b := h.do("GET", p, "", "", nil); code != http.StatusOK {
			t.Fatalf("GET %s without a key: %d %s", p, code, b)
		}
	}

	id := h.submit(alice, brushForm(t, 64, 48, image.Rect(8, 8, 24, 24)))
	done := h.wait(alice, id)
	if done.Status != StatusSucceeded {
		t.Fatalf("job: %+v", done)
	}
	// Bob cannot see, follow, download or cancel Alice's job: 404, as if it
	// did not exist.
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/jobs/" + id}, {"GET", "/v1/jobs/" + id + "/events"}, {"GET", "/v1/jobs/" + id + "/outputs/0"}, {"DELETE", "/v1/jobs/" + id},
	} {
		code, b := h.do(r.method, r.path, bob, "", nil)
		if code != http.StatusNotFound {
			t.Fatalf("%s %s as bob: %d %s", r.method, r.path, code, b)
		}
		if e := errorOf(t, b); e.Code != "not_found" {
			t.Fatalf("404 body: %+v", e)
		}
	}
	code, b := h.do("GET", "/v1/jobs", bob, "", nil)
	var list JobList
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil || len(list.Jobs) != 0 {
		t.Fatalf("bob's list: %d %s", code, b)
	}
	code, b = h.do("GET", "/v1/jobs", alice, "", nil)
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil || len(list.Jobs) != 1 || list.Jobs[0].ID != id {
		t.Fatalf("alice's list: %d %s", code, b)
	}
	if code, _ := h.do("GET", done.Outputs[0].URL, alice, "", nil); code != http.StatusOK {
		t.Fatalf("alice downloading her output: %d", code)
	}

	// A revoked key is refused once the lookup cache forgets it (emptied here;
	// TestAuthenticatorCache covers its lifetime).
	if _, err := h.st.RevokeKey(context.Background(), bobKey.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	h.svc.auth.mu.Lock()
	clear(h.svc.auth.cache)
	h.svc.auth.mu.Unlock()
	if code, _ := h.do("GET", "/v1/jobs", bob, "", nil); code != http.StatusUnauthorized {
		t.Fatalf("a revoked key: %d", code)
	}

	// Keys never reach the logs; neither do webhook secrets.
	logs := h.logs.String()
	for _, secret := range []string{alice, bob, alice[len(KeyPrefix):], bob[len(KeyPrefix):]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("an API key is in the logs")
		}
	}
	for _, hook := range h.rp.Webhooks() {
		secret := hook.URL[strings.LastIndex(hook.URL, ".")+1:]
		if strings.Contains(logs, secret) {
			t.Fatalf("a webhook secret is in the logs")
		}
	}
	if !strings.Contains(logs, "request refused") {
		t.Fatalf("refusals are not logged at all:\n%s", logs)
	}
}

// TestOpenService: with no key at all, an open service serves anyone; once a
// key exists, it wants one.
func TestOpenService(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true})
	if code, b := h.do("GET", "/v1/jobs", "", "", nil); code != http.StatusOK {
		t.Fatalf("open service: %d %s", code, b)
	}
	secret, _ := newKeyIn(t, h, "first")
	h.svc.auth.mu.Lock()
	h.svc.auth.keysOK = false // the cached count, as after its lifetime
	h.svc.auth.mu.Unlock()
	if code, _ := h.do("GET", "/v1/jobs", "", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("open service with a key: %d", code)
	}
	if code, _ := h.do("GET", "/v1/jobs", secret, "", nil); code != http.StatusOK {
		t.Fatalf("with the key: %d", code)
	}
}

// TestAuthenticatorCache checks the lookup cache on its own clock: a key
// revoked elsewhere stops working after authTTL.
func TestAuthenticatorCache(t *testing.T) {
	t.Parallel()
	st := openStore(t, hopts{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newAuthenticator(st, false, func() time.Time { return now })
	secret, k, err := NewKey("k", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	req := func() *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		return r
	}
	c, err := a.check(req())
	if err != nil || c.owner != k.ID {
		t.Fatalf("check: %+v %v", c, err)
	}
	if _, err := st.RevokeKey(context.Background(), k.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.check(req()); err != nil {
		t.Fatalf("within the cache's lifetime: %v", err)
	}
	now = now.Add(authTTL)
	if _, err := a.check(req()); err != errBadKey {
		t.Fatalf("after the cache's lifetime: %v, want errBadKey", err)
	}
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) != len(KeyPrefix)+43 || k.Hash != HashKey(secret) || strings.Contains(k.Prefix, secret[12:]) {
		t.Fatalf("key %q, record %+v", secret, k)
	}
}
