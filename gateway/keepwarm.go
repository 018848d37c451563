package gateway

import (
	"encoding/json"
	"fmt"
	"image"
	"time"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/runpod"
)

// warmupSide is the size of the images of a warm-up job.
const warmupSide = 64

// newKeepWarm makes the keep-warm: it watches the endpoint's health every
// Config.KeepWarm, shares what it sees with cold-start detection, and submits
// a tiny job of the package's workflow whenever no worker is up and nothing
// is queued. Warm-up jobs are not stored and take no slot.
func (s *Service) newKeepWarm() (*runpod.KeepWarm, error) {
	sub := &submission{files: map[string][]byte{}, params: map[string]any{}}
	grey := image.NewGray(image.Rect(0, 0, warmupSide, warmupSide))
	for i := range grey.Pix {
		grey.Pix[i] = 0x80
	}
	paint := image.NewGray(grey.Bounds())
	for i := range paint.Pix {
		paint.Pix[i] = 0xff
	}
	for _, prm := range s.pkg.images {
		var err error
		if prm == s.pkg.base || prm.Type != comfy.ParamMask {
			sub.files[prm.Name], err = encodePNG(grey)
		} else {
			sub.files[prm.Name], err = encodePNG(paint)
		}
		if err != nil {
			return nil, fmt.Errorf("gateway: making the warm-up job: %w", err)
		}
	}
	prep, aerr := s.prepare("warmup-"+newJobID(), sub, s.newRand())
	if aerr != nil {
		return nil, fmt.Errorf("gateway: the package cannot make a warm-up job: %s", aerr.Error())
	}
	return s.rp.NewKeepWarm(runpod.KeepWarmConfig{
		Interval: s.cfg.KeepWarm,
		Warmup: &runpod.Request{
			Input:  json.RawMessage(prep.input),
			Policy: &runpod.Policy{TTL: max(s.cfg.Timeout, runpodMinTTL)},
		},
		OnHealth: func(h *runpod.Health, err error) {
			s.health.mu.Lock()
			s.health.record(h, err)
			s.health.mu.Unlock()
		},
	})
}

// runpodMinTTL is the shortest job TTL RunPod accepts.
const runpodMinTTL = 10 * time.Second
