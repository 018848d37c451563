package web_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the browsers, the
// test servers and the in-process comfypod serve all stop with their tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
