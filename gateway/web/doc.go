// Package web is the Image Brush page: plain HTML, CSS and JavaScript modules
// embedded in the binary, with no build step and nothing loaded from other
// origins, so it works on a closed network.
//
// The service mounts Handler at "/" beside its jobs API:
//
//	mux.Handle("/v1/", api)
//	mux.Handle("/", web.Handler())
//
// The page talks to the API on its own origin only:
//
//   - POST /v1/jobs with multipart fields target, reference and mask (files),
//     prompt, strength and seed ("random" or a number);
//   - GET /v1/jobs/{id}/events, a text/event-stream read with fetch (so the
//     Bearer key can be sent), falling back to polling GET /v1/jobs/{id};
//   - GET /v1/jobs/{id}/outputs/{n} for the result, DELETE /v1/jobs/{id} to
//     cancel, GET /v1/jobs for the history, with each output's
//     /thumbnail (the output itself from a service without one);
//   - GET /v1/jobs/{id}/inputs/target, the target the service kept with a
//     job, to compare the result with when the job was not sent from this
//     page (opened from the history, or after a reload).
//
// When the user enters an API key it goes in an Authorization: Bearer header
// of every request; it is kept in localStorage only if they tick "Remember".
//
// The mask is painted on a canvas at the target's natural resolution and sent
// as a PNG in ComfyUI's mask-editor convention: alpha 0 where painted, 255
// elsewhere. Its colour is white where painted and black elsewhere, so a
// reader that takes the gray value as the mask (white = paint) agrees.
//
// A JPEG stored sideways with an EXIF orientation is shown upright by the
// browser, so the page uploads an upright copy of it: the target the service
// gets is the one the mask was painted on.
//
// The static files are in the static folder: index.html, app.js (wiring),
// mask.js (the mask editor), png.js (the PNG encoder used for the mask),
// sse.js (the event stream parser), api.js (the API client), orientation.js
// (EXIF orientation) and style.css.
//
// Tests: web_test.go checks the handler; js_test.go runs the modules inside
// Chromium; editor_test.go drives the mask editor with a mouse, a finger and
// the keyboard; contract_test.go runs the page against an in-memory
// implementation of the API contract for the states the real service cannot
// be made to show on cue (a long cold start, failures, a missing key);
// browser_test.go runs it end to end against the real service. Browser tests
// skip when Chromium is missing, unless COMFYPOD_TEST_REQUIRE lists chromium.
package web
