// Package blob is where the gateway keeps the files jobs produce, once copied
// out of RunPod's answer: a folder on disk (package disk) or an S3 bucket
// (package s3), behind one small interface. blobtest is the contract suite
// both pass.
//
// Files are written once under keys such as "jobs/<id>/0-out.png" and read
// back as seekable streams, so the gateway serves them with range requests
// and never holds a whole file in memory.
package blob
