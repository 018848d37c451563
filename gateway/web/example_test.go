package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/comfypod/comfypod/gateway/web"
)

// The service mounts the page at "/" beside its API.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.NotFoundHandler()) // the jobs API goes here
	mux.Handle("/", web.Handler())

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
