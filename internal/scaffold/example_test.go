package scaffold_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/comfypod/comfypod/internal/scaffold"
)

func ExampleWrite() {
	parent, err := os.MkdirTemp("", "scaffold-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(parent)

	res, err := scaffold.Write(context.Background(), filepath.Join(parent, "my-scaler"), scaffold.Options{Template: scaffold.TemplateBlank})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Name, "—", res.Title)
	for _, f := range res.Files {
		fmt.Println(f)
	}
	// Output:
	// my-scaler — My Scaler
	// .runpod/hub.json
	// .runpod/tests.json
	// Dockerfile
	// README.md
	// comfypod.json
	// test_input.json
	// workflow_api.json
}
