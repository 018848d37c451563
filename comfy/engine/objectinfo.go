package engine

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
)

// classInfo returns a class's /object_info entry as a JSON value, with the
// request-time combo lists of DynamicOptions in place.
func (s *Server) classInfo(ce *classEntry) (any, error) {
	info := ce.class.Info
	if ce.class.DynamicOptions != nil {
		opts, err := safeDynamicOptions(ce.class, s.validationEnv(""))
		if err != nil {
			return nil, fmt.Errorf("options of %s: %w", ce.name, err)
		}
		if info, err = info.WithOptions(opts); err != nil {
			return nil, fmt.Errorf("options of %s: %w", ce.name, err)
		}
	}
	data, err := json.Marshal((*node.Info)(info))
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", ce.name, err)
	}
	return pyjson.Parse(data)
}

// handleObjectInfo serves every class. A class whose entry cannot be built
// is left out and logged, as ComfyUI does.
func (s *Server) handleObjectInfo(w http.ResponseWriter, r *http.Request) {
	out := pyjson.NewObject()
	for _, name := range s.reg.order {
		v, err := s.classInfo(s.reg.byName[name])
		if err != nil {
			s.log.Error("object_info: class left out", "class", name, "err", err)
			continue
		}
		out.Set(name, v)
	}
	writeJSONResponse(w, http.StatusOK, out)
}

// handleObjectInfoClass serves one class, or {} for an unknown one.
func (s *Server) handleObjectInfoClass(w http.ResponseWriter, r *http.Request) {
	out := pyjson.NewObject()
	if ce, ok := s.reg.byName[r.PathValue("class")]; ok {
		v, err := s.classInfo(ce)
		if err != nil {
			s.log.Error("object_info: class failed", "class", ce.name, "err", err)
			writeText(w, http.StatusInternalServerError, "the class description cannot be built")
			return
		}
		out.Set(ce.name, v)
	}
	writeJSONResponse(w, http.StatusOK, out)
}
