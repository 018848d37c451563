// Package corenodes implements ComfyUI's model-free core node classes in Go,
// with ComfyUI 0.3.64's arithmetic and quirks.
package corenodes

import "github.com/comfypod/comfypod/comfy/engine/node"

// Classes returns the core node classes the engine serves.
func Classes() []*node.Class {
	return nil
}
