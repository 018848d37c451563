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
//     cancel, GET /v1/jobs for the history.
//
// When the user enters an API key it goes in an Authorization: Bearer header
// of every request; it is kept in localStorage only if they tick "Remember".
//
// The mask is painted on a canvas at the target's natural resolution and sent
// as a PNG in ComfyUI's mask-editor convention: alpha 0 where painted, 255
// elsewhere. Its colour is white where painted and black elsewhere, so a
// reader that takes the gray value as the mask (white = paint) agrees.
//
// The static files are in the static folder: index.html, app.js (wiring),
// mask.js (the mask editor), png.js (the PNG encoder used for the mask),
// sse.js (the event stream parser), api.js (the API client) and style.css.
package web
