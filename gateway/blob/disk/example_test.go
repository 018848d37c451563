package disk_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/comfypod/comfypod/gateway/blob/disk"
)

// Keys become paths under the folder.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "disk-example")
	defer os.RemoveAll(dir)
	st, err := disk.New(filepath.Join(dir, "outputs"))
	if err != nil {
		log.Fatal(err)
	}
	_, _ = st.Put(context.Background(), "jobs/j1/0-out.png", strings.NewReader("png"), "image/png")
	_, err = os.Stat(filepath.Join(dir, "outputs", "jobs", "j1", "0-out.png"))
	fmt.Println(err == nil)
	// Output: true
}
