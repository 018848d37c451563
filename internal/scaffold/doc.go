// Package scaffold writes new RunPod package folders for comfypod init.
//
// A Template is a complete package — .runpod/hub.json and .runpod/tests.json
// that agree with each other, the comfypod.json manifest, the workflows, a
// Dockerfile building on the comfypod worker image, a README with the deploy
// steps and test_input.json — that passes comfypod lint with no finding. Two
// templates are the packages comfypod ships (image-brush, and video for
// dance-scail, see package packages); blank is a minimal model-free workflow
// that runs on the comfypod engine, a starting point for your own.
//
//	res, err := scaffold.Write(ctx, "my-brush", scaffold.Options{Template: "image-brush"})
//	// res.Files: .runpod/hub.json, .runpod/tests.json, Dockerfile, README.md, …
//
// Write substitutes the new package's name for the template's wherever it
// appears (the manifest name, output prefixes, image tags) and its title for
// the template's (hub.json title, README heading). It refuses a folder that
// is not empty unless Options.Force is set, and writes atomically: a new
// package appears complete or not at all, and with Force each file is replaced
// by a rename, never left half written.
package scaffold
