package gateway

import (
	_ "embed"
	"net/http"
)

// openAPI describes the API (OpenAPI 3.1). The tests check it against the
// routes the service really serves and the answers it really gives.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3.1 document, as /openapi.json serves it.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func (s *Service) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(openAPI)
}
