package blob_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/blob/disk"
)

// Files go in once under a key and come back as seekable streams.
func Example() {
	dir, _ := os.MkdirTemp("", "blob-example")
	defer os.RemoveAll(dir)
	var st blob.Store
	st, err := disk.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	n, _ := st.Put(ctx, "jobs/j1/0-out.png", strings.NewReader("not really a png"), "image/png")
	obj, err := st.Open(ctx, "jobs/j1/0-out.png")
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	_, _ = obj.Seek(11, io.SeekStart)
	rest, _ := io.ReadAll(obj)
	_, missing := st.Open(ctx, "jobs/j2/0-out.png")
	fmt.Println(n, obj.Size, string(rest), missing != nil)
	// Output: 16 16 a png true
}

func ExampleCheckKey() {
	fmt.Println(blob.CheckKey("jobs/abc/0-out.png") == nil, blob.CheckKey("../etc/passwd") == nil)
	// Output: true false
}
