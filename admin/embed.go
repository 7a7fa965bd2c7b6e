package admin

import "embed"

// observerFiles are the observer page: plain HTML, CSS and JavaScript,
// served from the binary with no build step and nothing fetched from
// elsewhere.
//
//go:embed observer/index.html observer/style.css observer/app.js
var observerFiles embed.FS
