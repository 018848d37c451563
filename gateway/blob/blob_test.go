package blob_test

import (
	"strings"
	"testing"

	"github.com/comfypod/comfypod/gateway/blob"
)

func TestCheckKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "jobs/abc/0-out.png", "x.y-z_1", strings.Repeat("k", blob.MaxKeyLength)} {
		if err := blob.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q): %v", key, err)
		}
	}
	for _, key := range []string{"", "/a", "a/", "a//b", ".", "a/./b", "../a", "é", "a b", `a\b`, strings.Repeat("k", blob.MaxKeyLength+1)} {
		if err := blob.CheckKey(key); err == nil {
			t.Errorf("CheckKey(%q): no error", key)
		}
	}
}
