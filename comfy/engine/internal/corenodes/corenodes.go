package corenodes

import (
	"embed"
	"encoding/json"
	"fmt"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// objectInfo holds the /object_info entries captured from ComfyUI 0.3.64, one
// file per class. LoadImage and LoadImageMask carry an empty file list: the
// engine serves the input folder's listing through DynamicOptions.
//
//go:embed objectinfo/*.json
var objectInfo embed.FS

// Classes returns the core node classes the engine serves, each with its
// ComfyUI /object_info entry and an Execute that follows ComfyUI 0.3.64's
// arithmetic. Every call returns fresh values.
func Classes() []*node.Class {
	return []*node.Class{
		loadImageClass(),
		loadImageMaskClass(),
		saveImageClass(),
		previewImageClass(),
		imageScaleClass(),
		imageScaleByClass(),
		imageInvertClass(),
		imageBlendClass(),
		imageBlurClass(),
		imageSharpenClass(),
		imageCompositeMaskedClass(),
		imageCropClass(),
		imagePadForOutpaintClass(),
		emptyImageClass(),
		solidMaskClass(),
		invertMaskClass(),
		growMaskClass(),
		featherMaskClass(),
		maskCompositeClass(),
		imageToMaskClass(),
		maskToImageClass(),
		joinImageWithAlphaClass(),
		splitImageWithAlphaClass(),
		imageFlipClass(),
		imageRotateClass(),
		imageBatchClass(),
		repeatImageBatchClass(),
		imageFromBatchClass(),
		cropMaskClass(),
		thresholdMaskClass(),
	}
}

// info returns the embedded /object_info entry of class name. The entries
// are part of the binary, so a missing or malformed one is a build defect.
func info(name string) *node.Info {
	data, err := objectInfo.ReadFile("objectinfo/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("corenodes: no object_info for %s: %v", name, err))
	}
	var m map[string]*node.Info
	if err := json.Unmarshal(data, &m); err != nil {
		panic(fmt.Sprintf("corenodes: object_info for %s: %v", name, err))
	}
	i, ok := m[name]
	if !ok {
		panic(fmt.Sprintf("corenodes: object_info file for %s names another class", name))
	}
	return i
}
