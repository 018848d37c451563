package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/comfypod/comfypod/gateway/store/sqlite"
)

// Open creates the file and its schema on first use.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "sqlite-example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "data", "comfypod.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	n, err := st.CountActiveKeys(context.Background())
	fmt.Println(filepath.Base(st.Path()), n, err)
	// Output: comfypod.db 0 <nil>
}
