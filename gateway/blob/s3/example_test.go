package s3_test

import (
	"fmt"
	"log"

	"github.com/comfypod/comfypod/gateway/blob/s3"
)

// The command line names a bucket as a URL; credentials come from elsewhere
// (the environment) and never appear in it.
func ExampleParseURL() {
	cfg, err := s3.ParseURL("s3://my-bucket/comfypod/outputs?endpoint=http://127.0.0.1:9000&path_style=true")
	if err != nil {
		log.Fatal(err)
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKID", "secret"
	fmt.Println(cfg.Bucket, cfg.Prefix, cfg.PathStyle)
	fmt.Println(cfg)
	// Output:
	// my-bucket comfypod/outputs true
	// s3://my-bucket/comfypod/outputs (endpoint http://127.0.0.1:9000)
}
