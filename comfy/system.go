package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// ObjectInfo fetches every node class the server knows.
func (c *Client) ObjectInfo(ctx context.Context) (ObjectInfo, error) {
	var data []byte
	if err := c.getJSON(ctx, "/object_info", nil, &data); err != nil {
		return nil, err
	}
	return ParseObjectInfo(data)
}

// ClassInfo fetches one class; found is false when the server does not know
// it (it answers {}).
func (c *Client) ClassInfo(ctx context.Context, class string) (info *ClassInfo, found bool, err error) {
	if class == "" {
		return nil, false, errors.New("comfy: ClassInfo: empty class name")
	}
	var data []byte
	if err := c.getJSON(ctx, "/object_info/"+url.PathEscape(class), nil, &data); err != nil {
		return nil, false, err
	}
	oi, err := ParseObjectInfo(data)
	if err != nil {
		return nil, false, err
	}
	ci, ok := oi.Class(class)
	return ci, ok, nil
}

// SystemStats is GET /system_stats.
type SystemStats struct {
	// System describes the server process and machine.
	System struct {
		OS             string   `json:"os"`
		RAMTotal       int64    `json:"ram_total"`
		RAMFree        int64    `json:"ram_free"`
		ComfyUIVersion string   `json:"comfyui_version"`
		PythonVersion  string   `json:"python_version"`
		PytorchVersion string   `json:"pytorch_version"`
		EmbeddedPython bool     `json:"embedded_python"`
		Argv           []string `json:"argv"`
	} `json:"system"`
	// Devices are the compute devices.
	Devices []Device `json:"devices"`
}

// Device is a compute device of SystemStats.
type Device struct {
	// Name is the device's name ("cuda:0 NVIDIA H100 …").
	Name string `json:"name"`
	// Type is cuda, cpu, mps, …
	Type string `json:"type"`
	// Index is the device index, nil for the CPU.
	Index *int `json:"index"`
	// VRAMTotal is the device memory in bytes.
	VRAMTotal int64 `json:"vram_total"`
	// VRAMFree is the free device memory in bytes.
	VRAMFree int64 `json:"vram_free"`
	// TorchVRAMTotal is the memory torch has reserved, in bytes.
	TorchVRAMTotal int64 `json:"torch_vram_total"`
	// TorchVRAMFree is the free part of torch's reserve, in bytes.
	TorchVRAMFree int64 `json:"torch_vram_free"`
}

// SystemStats fetches the server's version, memory and devices.
func (c *Client) SystemStats(ctx context.Context) (*SystemStats, error) {
	s := new(SystemStats)
	if err := c.getJSON(ctx, "/system_stats", nil, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Features is GET /features.
type Features struct {
	// SupportsPreviewMetadata says the server can send type-4 previews.
	SupportsPreviewMetadata bool
	// MaxUploadSize is the request body limit in bytes.
	MaxUploadSize int64
	// Raw holds every flag as sent.
	Raw map[string]json.RawMessage
}

// Features fetches the server's feature flags.
func (c *Client) Features(ctx context.Context) (*Features, error) {
	var raw map[string]json.RawMessage
	if err := c.getJSON(ctx, "/features", nil, &raw); err != nil {
		return nil, err
	}
	f := &Features{Raw: raw}
	if b, ok := Value(raw["supports_preview_metadata"]).Bool(); ok {
		f.SupportsPreviewMetadata = b
	}
	if n, ok := Value(raw["max_upload_size"]).Number(); ok {
		var v float64
		if _, err := fmt.Sscan(n.String(), &v); err == nil {
			f.MaxUploadSize = int64(v)
		}
	}
	return f, nil
}
