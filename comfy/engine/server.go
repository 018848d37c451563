package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/comfypod/comfypod/comfy/engine/internal/corenodes"
	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
)

// Server is a ComfyUI-compatible server: an http.Handler serving ComfyUI's
// HTTP and websocket API, with a queue and an executor goroutine that runs
// prompts through the registered node classes.
//
// HTTP routes work as soon as New returns; prompts run once Start has been
// called. Stop ends the executor and closes every websocket.
type Server struct {
	cfg     *Config
	log     *slog.Logger
	reg     *registry
	handler http.Handler
	now     func() time.Time
	rand    *mrand.Rand

	inputDir, outputDir, tempDir, modelsDir string

	q      *promptQueue
	hub    *hub
	caches *caches // owned by the executor goroutine

	uploadMu sync.Mutex // upload name decisions and writes are serialised

	runMu   sync.Mutex
	current *running

	lifeMu     sync.Mutex
	started    bool
	softCancel context.CancelFunc
	hardCancel context.CancelFunc
	done       chan struct{}
	wsCtx      context.Context
	wsCancel   context.CancelFunc
	wsWG       sync.WaitGroup
}

// running is the prompt the executor is running.
type running struct {
	id     string
	cancel context.CancelFunc
}

// New returns a server for cfg. It creates the base directory's folders and
// empties temp/.
func New(cfg *Config) (*Server, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	reg, err := newRegistry(corenodes.Classes(), c.Classes)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    c,
		log:    c.Logger,
		reg:    reg,
		now:    c.Now,
		rand:   c.Rand,
		hub:    newHub(c.Logger),
		caches: newCaches(),
	}
	for _, d := range []struct {
		dst *string
		src string
	}{{&s.inputDir, c.InputDir}, {&s.outputDir, c.OutputDir}, {&s.tempDir, c.TempDir}, {&s.modelsDir, filepath.Join(c.Dir, "models")}} {
		abs, err := filepath.Abs(d.src)
		if err != nil {
			return nil, fmt.Errorf("engine: folder %s: %w", d.src, err)
		}
		*d.dst = abs
	}
	// ComfyUI removes temp/ at start (cleanup_temp).
	if err := os.RemoveAll(s.tempDir); err != nil {
		return nil, fmt.Errorf("engine: emptying the temp folder: %w", err)
	}
	for _, d := range []string{s.inputDir, s.outputDir, s.tempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("engine: creating folder: %w", err)
		}
	}
	s.q = newPromptQueue(c.HistorySize, func(remaining int) {
		s.hub.send(broadcast, message("status", statusData(remaining, "")))
	})
	s.wsCtx, s.wsCancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// statusData is the payload of a status message; sid is set only in the
// first message a client gets.
func statusData(remaining int, sid string) *pyjson.Object {
	d := pyjson.NewObject().Set("status", pyjson.NewObject().Set("exec_info", pyjson.NewObject().Set("queue_remaining", int64(remaining))))
	if sid != "" {
		d.Set("sid", sid)
	}
	return d
}

// ServeHTTP serves ComfyUI's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// InputDir returns the absolute path of the input/ folder, where uploads go
// and LoadImage reads.
func (s *Server) InputDir() string { return s.inputDir }

// OutputDir returns the absolute path of the output/ folder, where SaveImage
// writes.
func (s *Server) OutputDir() string { return s.outputDir }

// TempDir returns the absolute path of the temp/ folder, where PreviewImage
// writes; it is emptied when the server is created.
func (s *Server) TempDir() string { return s.tempDir }

// Classes returns the names of the node classes the server serves, in
// /object_info order.
func (s *Server) Classes() []string { return append([]string(nil), s.reg.order...) }

// Start starts the executor goroutine, which runs queued prompts one at a
// time. Cancelling ctx interrupts the running prompt and ends the executor,
// as a hard Stop does; Stop must still be called. Starting a started server
// does nothing.
func (s *Server) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.started {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	hard, hardCancel := context.WithCancel(ctx)
	soft, softCancel := context.WithCancel(hard)
	s.hardCancel, s.softCancel = hardCancel, softCancel
	s.done = make(chan struct{})
	if s.wsCtx.Err() != nil {
		s.wsCtx, s.wsCancel = context.WithCancel(context.Background())
		s.hub.reopen()
	}
	s.started = true
	done := s.done
	go func() {
		defer close(done)
		s.work(soft, hard)
	}()
	s.log.Info("engine started", "input", s.inputDir, "output", s.outputDir, "classes", len(s.reg.order))
	return nil
}

// Stop stops the executor: it lets the running prompt finish (pending
// prompts stay queued), and if ctx ends first it interrupts it. It then
// closes every websocket and returns once all the server's goroutines are
// gone. It returns ctx.Err() when the prompt had to be interrupted. Stop is
// safe to call twice and on a server that was never started.
func (s *Server) Stop(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	var err error
	if s.started {
		s.softCancel()
		select {
		case <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
			s.hardCancel()
			<-s.done
		}
		s.hardCancel()
		s.started = false
	}
	s.wsCancel()
	s.hub.closeAll()
	s.wsWG.Wait()
	if err != nil {
		s.log.Warn("engine stopped; the running prompt was interrupted", "err", err)
	} else {
		s.log.Info("engine stopped")
	}
	return err
}

// work is the prompt worker loop (ComfyUI's prompt_worker).
func (s *Server) work(soft, hard context.Context) {
	for {
		if soft.Err() != nil {
			return
		}
		if it, task, ok := s.q.get(); ok {
			s.runPrompt(hard, it, task)
			s.applyFlags()
			continue
		}
		s.applyFlags()
		if s.q.wait(soft) != nil {
			return
		}
	}
}

// applyFlags handles POST /free between prompts: free_memory resets the
// caches, so the next run computes every node again. There are no models to
// unload.
func (s *Server) applyFlags() {
	f := s.q.takeFlags()
	if f.freeMemory {
		s.caches = newCaches()
		s.log.Debug("caches reset")
	}
}

// interrupt cancels the running prompt: any prompt when promptID is empty,
// else only the prompt with that id. It reports whether one was interrupted.
func (s *Server) interrupt(promptID string) bool {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.current == nil || (promptID != "" && s.current.id != promptID) {
		return false
	}
	s.current.cancel()
	return true
}

// newUUID returns a random (version 4) UUID, dashed when dashed is set
// (prompt ids) or as 32 hex digits (client ids, like uuid4().hex).
func newUUID(dashed bool) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("engine: reading random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	if !dashed {
		return h
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// validationEnv is the Env class code sees while a prompt is validated.
func (s *Server) validationEnv(promptID string) *node.Env {
	return &node.Env{
		InputDir:        s.inputDir,
		OutputDir:       s.outputDir,
		TempDir:         s.tempDir,
		PromptID:        promptID,
		DisableMetadata: s.cfg.DisableMetadata,
		Now:             s.now,
	}
}
