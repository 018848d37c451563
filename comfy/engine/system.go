package engine

import (
	"bufio"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// handleSystemStats answers like ComfyUI on a CPU: RAM figures from the
// operating system, the emulated ComfyUI version, and one "cpu" device whose
// VRAM is the RAM. python_version and pytorch_version name the Go runtime and
// "none", since neither Python nor torch is involved.
func (s *Server) handleSystemStats(w http.ResponseWriter, r *http.Request) {
	total, free := memoryStats()
	osName := "posix"
	if runtime.GOOS == "windows" {
		osName = "nt"
	}
	argv := make([]any, len(os.Args))
	for i, a := range os.Args {
		argv[i] = a
	}
	if len(argv) > 1 {
		argv = argv[:1] // flags may carry paths or addresses; keep the program name only
	}
	writeJSONResponse(w, http.StatusOK, pyjson.NewObject().
		Set("system", pyjson.NewObject().
			Set("os", osName).
			Set("ram_total", total).
			Set("ram_free", free).
			Set("comfyui_version", ComfyUIVersion).
			Set("required_frontend_version", "").
			Set("installed_templates_version", "").
			Set("required_templates_version", "").
			Set("python_version", runtime.Version()+" (comfypod engine)").
			Set("pytorch_version", "none").
			Set("embedded_python", false).
			Set("argv", argv)).
		Set("devices", []any{pyjson.NewObject().
			Set("name", "cpu").
			Set("type", "cpu").
			Set("index", nil).
			Set("vram_total", total).
			Set("vram_free", free).
			Set("torch_vram_total", total).
			Set("torch_vram_free", free)}))
}

// memoryStats returns total and available RAM in bytes (from /proc/meminfo
// on Linux; the Go runtime's view elsewhere).
func memoryStats() (total, free int64) {
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				continue
			}
			switch fields[0] {
			case "MemTotal:":
				total = kb * 1024
			case "MemAvailable:":
				free = kb * 1024
			}
		}
		if total > 0 {
			return total, free
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.Sys), int64(m.Sys - m.HeapInuse)
}

// modelFolders are ComfyUI 0.3.64's model folder names, in its order, with
// the folders each reads and the file extensions it lists.
var modelFolders = []struct {
	name string
	dirs []string
	exts []string
}{
	{"checkpoints", []string{"checkpoints"}, modelExts},
	{"configs", []string{"configs"}, []string{".yaml"}},
	{"loras", []string{"loras"}, modelExts},
	{"vae", []string{"vae"}, modelExts},
	{"text_encoders", []string{"text_encoders", "clip"}, modelExts},
	{"diffusion_models", []string{"unet", "diffusion_models"}, modelExts},
	{"clip_vision", []string{"clip_vision"}, modelExts},
	{"style_models", []string{"style_models"}, modelExts},
	{"embeddings", []string{"embeddings"}, modelExts},
	{"diffusers", []string{"diffusers"}, []string{"folder"}},
	{"vae_approx", []string{"vae_approx"}, modelExts},
	{"controlnet", []string{"controlnet", "t2i_adapter"}, modelExts},
	{"gligen", []string{"gligen"}, modelExts},
	{"upscale_models", []string{"upscale_models"}, modelExts},
	{"custom_nodes", nil, nil},
	{"hypernetworks", []string{"hypernetworks"}, modelExts},
	{"photomaker", []string{"photomaker"}, modelExts},
	{"classifiers", []string{"classifiers"}, []string{""}},
	{"model_patches", []string{"model_patches"}, modelExts},
	{"audio_encoders", []string{"audio_encoders"}, modelExts},
}

var modelExts = []string{".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	names := make([]any, len(modelFolders))
	for i, f := range modelFolders {
		names[i] = f.name
	}
	writeJSONResponse(w, http.StatusOK, names)
}

func (s *Server) handleModelFolder(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("folder")
	for _, f := range modelFolders {
		if f.name == name {
			writeJSONResponse(w, http.StatusOK, toAnyList(s.listModels(f.dirs, f.exts)))
			return
		}
	}
	writeEmpty(w, http.StatusNotFound)
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var names []any
	for _, f := range modelFolders {
		if f.name != "embeddings" {
			continue
		}
		for _, p := range s.listModels(f.dirs, f.exts) {
			names = append(names, strings.TrimSuffix(p, filepath.Ext(p)))
		}
	}
	if names == nil {
		names = []any{}
	}
	writeJSONResponse(w, http.StatusOK, names)
}

// listModels lists the files under models/<dir> for each dir, relative and
// slash-separated, filtered by extension ("" in exts accepts any file),
// sorted.
func (s *Server) listModels(dirs, exts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		root := filepath.Join(s.modelsDir, d)
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(p))
			if !slices.Contains(exts, "") && !slices.Contains(exts, ext) {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return nil
			}
			rel = filepath.ToSlash(rel)
			if !seen[rel] {
				seen[rel] = true
				out = append(out, rel)
			}
			return nil
		})
	}
	slices.Sort(out)
	return out
}

func toAnyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
