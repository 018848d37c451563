package worker

// Builders of small media files that the worker's checks read like real
// ones, for the package's external tests.
var (
	TestMP4  = testMP4
	TestWebM = testWebM
	TestWAV  = testWAV
	TestGIF  = testGIF
)
