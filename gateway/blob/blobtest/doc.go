// Package blobtest is the contract suite of gateway/blob: every Store runs
// it from its own tests (a folder, an S3-compatible server), so the gateway
// cannot tell them apart: round trips with seeking, large streamed files,
// replacement, missing files, failed writes that leave nothing, bad keys,
// concurrent writers.
package blobtest
