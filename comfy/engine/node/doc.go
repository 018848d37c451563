// Package node defines what a ComfyUI node class is to the comfypod engine: its
// schema as ComfyUI's /object_info serves it (Info), its behaviour (Class), and
// the tensor types that flow along links (Image, Mask).
//
// The engine (package engine) validates prompts against Info exactly as ComfyUI
// 0.3.64 does, then calls Class.Execute in dependency order. The model-free core
// classes live in engine/internal/corenodes; callers may register more classes
// (for example a fake VHS_VideoCombine in tests) through engine.Config.
//
// Conventions follow ComfyUI: an IMAGE is float32 [B,H,W,C] with C = 3 (RGB) or
// 4 (RGBA), values nominally in 0..1; a MASK is float32 [B,H,W] where 1.0 means
// "edit here".
package node
